"""Per-client token buckets, daily and monthly quotas and usage counts, shared by every gateway.

Each gateway decides locally, with no network call on the request path, from its view: the
totals the shared backend returned at its last sync plus what it admitted since. Admitted
requests are sent to the backend in small batches (every `interval` seconds, or sooner once a
client's unacknowledged requests reach half of its batch); the backend (Redis, redis_backend.py;
in memory without Redis) adds them up and answers the global totals and bucket level.

Overshoot bound: a gateway never holds more than B admitted-but-unacknowledged requests of one
client (the next request of that client waits for the sync in flight), where B, the client's
batch, is its smallest limit (daily quota, monthly quota, bucket size) / 32, at least 1 and at
most `batch`. So with N gateways a daily or monthly quota Q admits at most Q - 1 + N x B requests
(about 3% of Q per gateway, and never more than N x `batch`), and a token bucket at most N x B
more than one shared bucket would in any window; the bucket may go into debt (down to -burst), so
the long-run rate stays the configured one. With one gateway the figures are exact. A key with
large limits gets a large batch, so its syncs never hold up its requests.
If the backend is unreachable each gateway goes on deciding on its own view (so at most N times
the limit) and sends the counts once it is back.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400


def period_start(moment: dt.datetime, refresh_day: int) -> dt.datetime:
    """The start of the monthly period holding `moment` (a day past a short month's end means
    its last day)."""

    def start_in(year: int, month: int) -> dt.datetime:
        day = min(refresh_day, calendar.monthrange(year, month)[1])
        return dt.datetime(year, month, day, tzinfo=dt.UTC)

    this_month = start_in(moment.year, moment.month)
    if moment >= this_month:
        return this_month
    year, month = (moment.year, moment.month - 1) if moment.month > 1 else (moment.year - 1, 12)
    return start_in(year, month)


def next_period_start(start: dt.datetime, refresh_day: int) -> dt.datetime:
    year, month = (start.year, start.month + 1) if start.month < 12 else (start.year + 1, 1)
    day = min(refresh_day, calendar.monthrange(year, month)[1])
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Limits:
    rate: float = 0.0  # tokens per second; 0 = no bucket
    burst: int = 0
    per_day: int | None = None
    per_month: int | None = None

    @property
    def any(self) -> bool:
        return self.rate > 0 or self.per_day is not None or self.per_month is not None


class Verdict(NamedTuple):
    allowed: bool
    reason: str = ""  # "rate", "day" or "month" when refused
    retry_after: float = 0.0


ALLOWED = Verdict(True)


class Report(NamedTuple):
    client: str
    day: str
    month: str
    counts: dict[str, int]  # route class -> requests
    spent: int  # tokens taken (counted or not)
    rate: float
    burst: int


class Totals(NamedTuple):
    day_total: int
    month_total: int
    tokens: float | None  # the shared bucket's level after this report (None: no bucket)


class Backend(Protocol):
    shared: bool

    async def apply(self, reports: list[Report]) -> list[Totals]: ...
    async def read(self, client: str, day: str, month: str) -> tuple[dict[str, int], dict[str, int]]: ...
    async def close(self) -> None: ...


@dataclass(slots=True)
class _State:
    day: str
    month: str
    tokens: float
    stamp: float
    seen_day: int = 0  # the backend's totals for `day`/`month` at the last sync
    seen_month: int = 0
    local_day: int = 0  # counted here for `day`/`month`, not yet in seen_*
    local_month: int = 0
    unsent: dict[tuple[str, str, str], int] = field(default_factory=dict)
    unsent_tokens: int = 0
    inflight_tokens: int = 0
    limits: Limits = Limits()
    cap: float = 0.0


class Meter:
    def __init__(
        self,
        backend: Backend,
        *,
        batch: int = 256,
        interval: float = 0.1,
        refresh_day: int = 1,
        clock: Callable[[], float] = time.time,
        max_clients: int = 200_000,
    ) -> None:
        if not 1 <= refresh_day <= 31:
            raise ValueError("refresh_day must be 1..31")
        self.backend = backend
        self.batch = max(1, batch) if backend.shared else math.inf
        self.interval = interval
        self.refresh_day = refresh_day
        self.max_clients = max_clients
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._dirty: set[str] = set()
        self._kick = asyncio.Event()
        self._flushed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._until = 0.0
        self._day = self._month = ""
        self._month_end = 0.0
        self.degraded = False

    # -- the calendar ------------------------------------------------------------------------
    def _calendar(self, now: float) -> None:
        if now < self._until:
            return
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        start = period_start(moment, self.refresh_day)
        self._day = moment.date().isoformat()
        self._month = start.date().isoformat()
        self._month_end = next_period_start(start, self.refresh_day).timestamp()
        self._until = (now // DAY_SECONDS + 1) * DAY_SECONDS

    def today(self) -> tuple[str, str, float, float]:
        """(day, period start, next midnight, next period start) in UTC, as of now."""
        self._calendar(self._clock())
        return self._day, self._month, self._until, self._month_end

    # -- the request path ----------------------------------------------------------------------
    def try_admit(self, client: str, limits: Limits, klass: str | None) -> Verdict | None:
        """Decide locally; None when this gateway already holds `batch` unacknowledged requests
        of the client (call `admit`, which waits for the sync). `klass` None: not counted."""
        now = self._clock()
        if now >= self._until:
            self._calendar(now)
        st = self._states.get(client)
        if st is None:
            if len(self._states) >= self.max_clients:
                self._forget()
            st = self._states[client] = _State(self._day, self._month, float(limits.burst), now)
        elif st.day != self._day:
            st.day, st.seen_day, st.local_day = self._day, 0, 0
            if st.month != self._month:
                st.month, st.seen_month, st.local_month = self._month, 0, 0
        if st.limits is not limits:
            st.limits, st.cap = limits, self.cap(limits)
        if st.cap and not self.degraded and st.unsent_tokens + st.inflight_tokens >= st.cap:
            self._kick.set()
            return None
        if klass is not None:
            if limits.per_day is not None and st.seen_day + st.local_day >= limits.per_day:
                return Verdict(False, "day", self._until - now)
            if limits.per_month is not None and st.seen_month + st.local_month >= limits.per_month:
                return Verdict(False, "month", self._month_end - now)
        if limits.rate > 0:
            tokens = min(float(limits.burst), st.tokens + (now - st.stamp) * limits.rate)
            st.stamp = now
            if tokens < 1.0:
                st.tokens = tokens
                return Verdict(False, "rate", (1.0 - tokens) / limits.rate)
            st.tokens = tokens - 1.0
        st.unsent_tokens += 1
        if klass is not None:
            st.local_day += 1
            st.local_month += 1
            slot = (st.day, st.month, klass)
            st.unsent[slot] = st.unsent.get(slot, 0) + 1
        self._dirty.add(client)
        if st.cap and st.unsent_tokens >= st.cap / 2:  # (what is in flight is on its way)
            self._kick.set()
        return ALLOWED

    def cap(self, limits: Limits) -> float:
        """The client's batch: unacknowledged requests it may have here (0: no limit, no cap)."""
        if not limits.any or not self.backend.shared:
            return 0.0
        smallest = min(
            q for q in (limits.per_day, limits.per_month, limits.burst if limits.rate > 0 else None) if q
        )
        return min(self.batch, max(1, smallest // 32))

    async def admit(self, client: str, limits: Limits, klass: str | None) -> Verdict:
        while True:
            verdict = self.try_admit(client, limits, klass)
            if verdict is not None:
                return verdict
            flushed = self._flushed
            await flushed.wait()

    def _forget(self) -> None:
        idle = [c for c, s in self._states.items() if c not in self._dirty and not s.inflight_tokens]
        for client in idle[: max(1, len(idle) // 2)]:
            del self._states[client]

    # -- syncing -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Send the batches forever (the app's lifespan runs and cancels this)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self.interval)
            self._kick.clear()
            try:
                await self.flush()
            except Exception:  # never let the sync loop die
                log.exception("usage sync failed")

    async def flush(self) -> None:
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        reports: list[Report] = []
        sent: list[tuple[_State, int, int, int]] = []  # state, tokens, counted for day, for month
        for client in self._dirty:
            st = self._states.get(client)
            if st is None:
                continue
            by_period: dict[tuple[str, str], dict[str, int]] = {}
            for (day, month, klass), n in st.unsent.items():
                by_period.setdefault((day, month), {})[klass] = n
            current = by_period.pop((st.day, st.month), {})
            for (day, month), counts in by_period.items():  # left from before midnight
                reports.append(Report(client, day, month, counts, 0, 0.0, 0))
                sent.append((st, 0, -1, -1))
            reports.append(
                Report(client, st.day, st.month, current, st.unsent_tokens, st.limits.rate, st.limits.burst)
            )
            day_n = sum(current.values())
            sent.append((st, st.unsent_tokens, day_n, day_n))
            st.inflight_tokens += st.unsent_tokens
            st.unsent_tokens = 0
            st.unsent = {}
        self._dirty = set()
        if not reports:
            self._wake()
            return
        try:
            totals = await self.backend.apply(reports)
        except Exception as exc:
            self._restore(reports, sent)
            if not self.degraded:
                log.warning(
                    "usage backend unavailable; limits enforced per gateway", extra={"error": str(exc)}
                )
            self.degraded = True
            self._wake()
            return
        self.degraded = False
        now = self._clock()
        for report, (st, tokens, day_n, _), total in zip(reports, sent, totals, strict=True):
            st.inflight_tokens -= tokens
            if day_n < 0 or report.day != st.day:
                continue
            st.seen_day = total.day_total
            st.local_day -= day_n
            if report.month == st.month:
                st.seen_month = total.month_total
                st.local_month -= day_n
            if total.tokens is not None and st.limits.rate > 0:
                st.tokens = min(float(st.limits.burst), total.tokens) - st.unsent_tokens
                st.stamp = now
        self._wake()

    def _restore(self, reports: list[Report], sent: list[tuple[_State, int, int, int]]) -> None:
        for report, (st, tokens, _, _) in zip(reports, sent, strict=True):
            st.inflight_tokens -= tokens
            st.unsent_tokens += tokens
            for klass, n in report.counts.items():
                slot = (report.day, report.month, klass)
                st.unsent[slot] = st.unsent.get(slot, 0) + n
            self._dirty.add(report.client)

    def _wake(self) -> None:
        self._flushed.set()
        self._flushed = asyncio.Event()

    async def usage(self, client: str) -> tuple[dict[str, int], dict[str, int]]:
        """(today's counts, this period's counts) by route class, with `_total`; this gateway's
        own requests are sent first, so they are all included."""
        await self.flush()
        day, month, _, _ = self.today()
        return await self.backend.read(client, day, month)


class LocalBackend:
    """The embedded default (no Redis): the same accounting in this process's memory."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, str], dict[str, int]] = {}  # (client, "d:day"|"m:month")
        self._buckets: dict[str, tuple[float, float]] = {}
        self._latest_day = ""

    async def apply(self, reports: list[Report]) -> list[Totals]:
        now = self._clock()
        out = []
        for r in reports:
            day = self._counts.setdefault((r.client, "d:" + r.day), {})
            month = self._counts.setdefault((r.client, "m:" + r.month), {})
            for klass, n in r.counts.items():
                for bucket in (day, month):
                    bucket[klass] = bucket.get(klass, 0) + n
                    bucket["_total"] = bucket.get("_total", 0) + n
            tokens = None
            if r.rate > 0:
                level, stamp = self._buckets.get(r.client, (float(r.burst), now))
                tokens = max(-float(r.burst), min(float(r.burst), level + (now - stamp) * r.rate) - r.spent)
                self._buckets[r.client] = (tokens, now)
            out.append(Totals(day.get("_total", 0), month.get("_total", 0), tokens))
            if r.day > self._latest_day:
                self._prune(r.day)
        return out

    def _prune(self, day: str) -> None:
        """Forget daily counts older than yesterday and periods older than about two months."""
        self._latest_day = day
        oldest_day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
        oldest_month = (dt.date.fromisoformat(day) - dt.timedelta(days=62)).isoformat()
        for key in list(self._counts):
            kind, _, when = key[1].partition(":")
            if when < (oldest_day if kind == "d" else oldest_month):
                del self._counts[key]

    async def read(self, client: str, day: str, month: str) -> tuple[dict[str, int], dict[str, int]]:
        return dict(self._counts.get((client, "d:" + day), {})), dict(
            self._counts.get((client, "m:" + month), {})
        )

    async def close(self) -> None:
        return None
