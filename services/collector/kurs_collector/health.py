"""Per-feed health bookkeeping (pure state, no I/O)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

IDLE, HEALTHY, FAILING, DISABLED = "idle", "healthy", "failing", "disabled"


@dataclass
class FeedHealth:
    id: str
    source: str
    description: str
    enabled: bool
    state: str = IDLE
    last_success_at: dt.datetime | None = None
    last_attempt_at: dt.datetime | None = None
    last_error: str = ""
    last_latency_ms: int = 0
    observations_delivered: int = 0
    consecutive_failures: int = 0

    def __post_init__(self) -> None:
        if not self.enabled:
            self.state = DISABLED

    def attempt(self, now: dt.datetime) -> None:
        self.last_attempt_at = now

    def success(self, now: dt.datetime, delivered: int) -> None:
        self.state = HEALTHY
        self.last_success_at = now
        self.last_error = ""
        self.consecutive_failures = 0
        self.observations_delivered += delivered
        if self.last_attempt_at is not None:
            self.last_latency_ms = int((now - self.last_attempt_at).total_seconds() * 1000)

    def progress(self, delivered: int) -> None:
        self.observations_delivered += delivered
        if self.state != FAILING:
            self.state = HEALTHY

    def failure(self, now: dt.datetime, error: str) -> None:
        self.state = FAILING
        self.last_error = error[:500]
        self.consecutive_failures += 1
        if self.last_attempt_at is not None:
            self.last_latency_ms = int((now - self.last_attempt_at).total_seconds() * 1000)
