"""Per-feed health bookkeeping (pure state, no I/O)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kurs_collector.breaker import CLOSED, OPEN

IDLE, HEALTHY, DEGRADED, FAILING, DOWN, DISABLED = (
    "idle",
    "healthy",
    "degraded",
    "failing",
    "down",
    "disabled",
)


@dataclass
class FeedHealth:
    id: str
    source: str
    description: str
    enabled: bool
    mode: str = "once"
    kind: str = ""
    endpoint: str = ""
    disabled_reason: str = ""
    schedule: str = ""
    state: str = IDLE
    last_success_at: dt.datetime | None = None
    last_attempt_at: dt.datetime | None = None
    last_error: str = ""
    last_error_at: dt.datetime | None = None
    last_latency_ms: int = 0
    observations_delivered: int = 0
    consecutive_failures: int = 0
    figures_refused: int = 0
    publications_missed: int = 0
    circuit: str = CLOSED
    next_run_at: dt.datetime | None = None
    last_day: str = ""
    last_observed_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not self.enabled:
            self.state = DISABLED

    def attempt(self, now: dt.datetime) -> None:
        self.last_attempt_at = now

    def success(self, now: dt.datetime, delivered: int, problems: int = 0) -> None:
        self.state = DEGRADED if problems else HEALTHY
        self.last_success_at = now
        if not problems:
            self.last_error = ""
        self.consecutive_failures = 0
        self.observations_delivered += delivered
        if self.last_attempt_at is not None:
            self.last_latency_ms = int((now - self.last_attempt_at).total_seconds() * 1000)

    def progress(self, delivered: int, now: dt.datetime | None = None) -> None:
        self.observations_delivered += delivered
        self.consecutive_failures = 0
        if now is not None:
            self.last_success_at = now
        self.state = HEALTHY

    def problem(self, now: dt.datetime, detail: str) -> None:
        """A figure or message refused; the feed itself still works."""
        self.figures_refused += 1
        self.last_error = detail[:500]
        self.last_error_at = now
        if self.state in (IDLE, HEALTHY):
            self.state = DEGRADED

    def failure(self, now: dt.datetime, error: str, circuit: str = CLOSED) -> None:
        self.circuit = circuit
        self.state = DOWN if circuit == OPEN else FAILING
        self.last_error = error[:500]
        self.last_error_at = now
        self.consecutive_failures += 1
        if self.last_attempt_at is not None:
            self.last_latency_ms = int((now - self.last_attempt_at).total_seconds() * 1000)
