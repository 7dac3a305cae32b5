"""A circuit breaker per source: stop hammering a provider that keeps failing.

closed    -> requests flow; `failure_threshold` consecutive failed fetches open the circuit.
open      -> requests are refused at once until `reset_seconds` have passed.
half_open -> one trial request; success closes the circuit, failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self.clock() - self._opened_at >= self.reset_seconds:
            return HALF_OPEN
        return OPEN

    def allow(self) -> bool:
        return self.state != OPEN

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a trial request through (0 when not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_seconds - (self.clock() - self._opened_at))

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            self._opened_at = self.clock()
