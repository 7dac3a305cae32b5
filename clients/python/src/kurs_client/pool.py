"""Health-checked failover over an ordered endpoint list (the caller's region first).

An endpoint is used while it is known healthy (a probe or a successful call within
`health_interval`); otherwise it is probed first (grpc.health.v1 Check, or GET /readyz over
REST) with `health_timeout`. An endpoint whose probe or call fails is skipped for
`down_seconds`. A call goes to the first usable endpoint; when that endpoint fails with a
transient error (unavailable, timed out), the same call moves to the next endpoint, all within
one overall deadline. Retries on one endpoint are gRPC's own (service config retryPolicy);
this module only moves between endpoints. A preferred endpoint is re-probed once its down
period is over, so traffic returns to the caller's region when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from kurs_client.config import ClientConfig, Endpoint
from kurs_client.errors import UnavailableError

log = logging.getLogger("kurs_client")
T = TypeVar("T")

Probe = Callable[[Endpoint, float], Awaitable[bool]]


class TransientError(Exception):
    """An endpoint could not answer (unreachable, unavailable, timed out): try another one."""


class StreamRenewal(TransientError):
    """A stream reached its own deadline: renew it (resume) on the same endpoint."""


@dataclass(slots=True)
class _State:
    healthy_until: float = 0.0
    down_until: float = 0.0


class EndpointPool:
    def __init__(
        self, config: ClientConfig, probe: Probe, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.endpoints = config.ordered_endpoints()
        self._probe = probe
        self._clock = clock
        self._states = {e: _State() for e in self.endpoints}
        self._locks: dict[Endpoint, asyncio.Lock] = {}

    def mark_down(self, endpoint: Endpoint, reason: str = "") -> None:
        state = self._states[endpoint]
        state.healthy_until = 0.0
        state.down_until = self._clock() + self.config.down_seconds
        log.warning("kurs endpoint down", extra={"endpoint": endpoint.address, "reason": reason})

    def mark_up(self, endpoint: Endpoint) -> None:
        state = self._states[endpoint]
        state.down_until = 0.0
        state.healthy_until = self._clock() + self.config.health_interval

    def is_down(self, endpoint: Endpoint) -> bool:
        return self._states[endpoint].down_until > self._clock()

    async def _usable(self, endpoint: Endpoint, deadline: float) -> bool:
        state = self._states[endpoint]
        if state.healthy_until > self._clock():
            return True
        lock = self._locks.setdefault(endpoint, asyncio.Lock())
        async with lock:  # one probe per endpoint at a time; the others reuse its verdict
            if state.healthy_until > self._clock():
                return True
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            try:
                ok = await self._probe(endpoint, min(self.config.health_timeout, remaining))
            except Exception as exc:  # any probe failure means "not usable"
                log.debug("kurs probe failed", extra={"endpoint": endpoint.address, "error": repr(exc)})
                ok = False
            if ok:
                self.mark_up(endpoint)
            else:
                self.mark_down(endpoint, "health check failed")
            return ok

    async def pick(self, exclude: set[Endpoint], deadline: float) -> Endpoint | None:
        """The first usable endpoint not in `exclude`; endpoints marked down are a last resort."""
        candidates = [e for e in self.endpoints if e not in exclude]
        resting = [e for e in candidates if self.is_down(e)]
        for endpoint in [e for e in candidates if e not in resting] + resting:
            if self._clock() >= deadline:
                return None
            if await self._usable(endpoint, deadline):
                return endpoint
            exclude.add(endpoint)
        return None

    async def call(
        self, attempt: Callable[[Endpoint, float], Awaitable[T]], timeout: float | None = None
    ) -> T:
        """Run `attempt(endpoint, attempt_timeout)` on the first usable endpoint, failing over on
        TransientError until one answers or the deadline passes (then UnavailableError)."""
        deadline = self._clock() + (timeout or self.config.timeout)
        tried: set[Endpoint] = set()
        failures: list[str] = []
        while True:
            endpoint = await self.pick(tried, deadline)
            if endpoint is None:
                reason = "deadline exceeded" if self._clock() >= deadline else "no healthy endpoint"
                raise UnavailableError(f"Kurs is unavailable: {reason}", tuple(failures))
            tried.add(endpoint)
            remaining = deadline - self._clock()
            try:
                result = await attempt(endpoint, min(self.config.attempt_timeout, remaining))
            except TransientError as exc:
                failures.append(f"{endpoint.address}: {exc}")
                self.mark_down(endpoint, str(exc))
                continue
            self.mark_up(endpoint)
            return result
