"""The contract of a feed, and the two shapes every real source adapter takes.

A feed is one source adapter that yields batches of observations (`Feed`). Real sources
subclass one of:

* `HttpFeed` - a scheduled publication (central banks): `latest_requests()` and, when the
  provider serves date ranges, `range_requests(start, end)`, plus `parse(payload)`. The base
  class fetches (conditional requests, retries, breaker), screens the figures
  (kurs_collector.checks), yields one batch per business day, and records progress only
  after the runner has delivered each batch.
* `MarketFeed` - a market: `ticker_request()` + `parse_ticker(payload)` for REST polling, and
  optionally `subscribe_messages()` + `parse_message(message)` for its WebSocket stream
  (`StreamFeed`, in feeds/stream.py).

Adding a source is one module under kurs_collector/feeds/ registered in feeds/registry.py,
one table in config/sources.toml and one fixture under tests/fixtures/sources/.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kurs_collector.checks import mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.pairs import price_text
from kurs_collector.http import redact
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.timeutil import utcnow

if TYPE_CHECKING:
    from kurs_collector.config import SourceConfig
    from kurs_collector.http import Fetcher, Payload, Request
    from kurs_collector.schedule import Schedule
    from kurs_collector.state import StateStore

__all__ = ["Feed", "FeedContext", "FeedError", "HttpFeed", "MarketFeed", "ProviderFeed"]

log = logging.getLogger(__name__)


class Feed(Protocol):
    id: str  # feed id, unique in the collector ("ecb-history")
    source: str  # publisher id carried by its observations ("ecb")
    description: str
    # "once": runs at start and on CollectNow; "stream": runs continuously until stopped;
    # "scheduled": follows its publication schedule; "poll": every poll interval.
    mode: str

    def collect(self) -> AsyncIterator[Sequence[Observation]]:
        """Yield batches; raise FeedError on a bad or unreachable source."""
        ...


@dataclass
class FeedContext:
    """What a network feed gets from the collector."""

    config: SourceConfig
    fetcher: Fetcher
    state: StateStore
    clock: Callable[[], dt.datetime] = utcnow
    secrets: dict[str, str] = field(default_factory=dict)


def _wrap_parse_error(source: str, full_url: str, exc: Exception) -> FeedError:
    url = redact(full_url)
    if isinstance(exc, FeedError):
        return FeedError(f"{source}: {exc} ({url})")
    if isinstance(exc, UnicodeDecodeError):
        return FeedError(f"{source}: wrong encoding, {exc.reason} at byte {exc.start} ({url})")
    return FeedError(f"{source}: unreadable payload, {type(exc).__name__}: {exc} ({url})")


class ProviderFeed:
    """What every feed that talks to a provider shares: its config, fetcher, breaker and the
    figures it refused (`problems`, reported to the runner as they happen)."""

    adapter: ClassVar[str]
    source: str
    description: str
    kind: str
    mode: str

    def __init__(self, ctx: FeedContext) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.id = ctx.config.id
        self.fetcher = ctx.fetcher
        self.breaker = ctx.fetcher.breaker
        # Figures dropped during the last run, with the reason (health "degraded").
        self.problems: list[str] = []
        # Set by the runner: called with each problem as it happens (streams never "finish").
        self.reporter: Callable[[str], None] | None = None

    def report(self, problem: str) -> None:
        self.problems.append(problem)
        del self.problems[:-50]
        if self.reporter is not None:
            self.reporter(problem)

    def option(self, name: str, default: Any = None) -> Any:
        return self.config.option(name, default)

    def _screen(self, observations: list[Observation], url: str) -> list[Observation]:
        from kurs_collector.checks import screen

        good, problems = screen(
            observations,
            now=self.ctx.clock(),
            max_future=dt.timedelta(seconds=self.config.max_future_seconds),
        )
        for problem in problems:
            log.warning("figure refused", extra={"feed": self.id, "problem": problem, "url": url})
            self.report(problem)
        return good

    def observation(
        self,
        base: str,
        quote: str,
        value: str,
        day: dt.date,
        observed_at: dt.datetime,
        fetched_at: dt.datetime,
        bid: str = "",
        ask: str = "",
    ) -> Observation:
        return Observation(
            source=self.source,
            feed=self.id,
            kind=self.kind,
            base=base,
            quote=quote,
            value=value,
            day=day.isoformat(),
            observed_at=observed_at,
            fetched_at=fetched_at,
            bid=bid,
            ask=ask,
        )


REVISION_DAYS = 10
MAX_VALIDATORS = 64  # conditional-request validators kept per feed
# Catch-up after downtime reaches back at most this far; older gaps: the backfill command.
CATCH_UP_DAYS = 93


class HttpFeed(ProviderFeed):
    """A central bank's scheduled publication."""

    kind: str = REFERENCE
    mode: str = "scheduled"
    schedule: ClassVar[Schedule]
    supports_range: ClassVar[bool] = False

    # --- what an adapter provides -------------------------------------------------------
    def latest_requests(self) -> list[Request]:
        raise NotImplementedError

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        raise FeedError(f"{self.id} cannot fetch date ranges; use a feed of the same source that can")

    def catch_up_requests(self, after: dt.date) -> list[Request]:
        """Requests that cover every publication after `after` (default: a range, if served)."""
        if self.supports_range:
            today = self.ctx.clock().date()
            start = max(after + dt.timedelta(days=1), today - dt.timedelta(days=CATCH_UP_DAYS))
            return self.range_requests(start, today)
        return self.latest_requests()

    def parse(self, payload: Payload) -> list[Observation]:
        raise NotImplementedError

    # --- the machinery ------------------------------------------------------------------
    @property
    def last_day(self) -> dt.date | None:
        text = self.ctx.state.get(self.id).last_day
        return dt.date.fromisoformat(text) if text else None

    def behind(self, now: dt.datetime) -> bool:
        due = self.schedule.latest_due(now)
        last = self.last_day
        return due is not None and (last is None or last < due)

    async def collect(self) -> AsyncIterator[Sequence[Observation]]:
        last = self.last_day
        now = self.ctx.clock()
        if last is not None and self.schedule.missed(last, now, now) > 1:
            requests = self.catch_up_requests(last)
        else:
            requests = self.latest_requests()
        # Days well before the newest one held are not delivered again on every run (a
        # publisher's revision within REVISION_DAYS still is).
        since = (last - dt.timedelta(days=REVISION_DAYS)).isoformat() if last is not None else None
        async for batch in self.collect_requests(requests, since=since):
            yield batch

    async def collect_range(self, start: dt.date, end: dt.date) -> AsyncIterator[Sequence[Observation]]:
        """Backfill [start, end]; unconditional, and it does not move the feed's progress."""
        wanted_first, wanted_last = start.isoformat(), end.isoformat()
        async for batch in self.collect_requests(
            self.range_requests(start, end), conditional=False, commit=False
        ):
            kept = [o for o in batch if wanted_first <= o.day <= wanted_last]
            if kept:
                yield kept

    def _merge(self, observations: list[Observation]) -> list[Observation]:
        """Figures of several payloads (one per series or per day): identical repeats are
        dropped quietly (a provider answering a holiday with the day before), conflicting
        ones are dropped and reported."""
        seen: dict[tuple[str, str, str], Observation] = {}
        conflicts: set[tuple[str, str, str]] = set()
        for obs in observations:
            key = (obs.base, obs.quote, obs.day)
            first = seen.setdefault(key, obs)
            if first is not obs and first.value != obs.value and key not in conflicts:
                conflicts.add(key)
                self.report(
                    f"{obs.base}/{obs.quote} {obs.day}: two payloads disagree ({first.value}, {obs.value})"
                )
        return [obs for key, obs in seen.items() if key not in conflicts]

    async def collect_requests(
        self,
        requests: Sequence[Request],
        *,
        conditional: bool = True,
        commit: bool = True,
        since: str | None = None,
    ) -> AsyncIterator[Sequence[Observation]]:
        """Fetch every request, then yield one batch per business day across all of them
        (so a day's figures from several series travel together), oldest first. Progress
        and validators are recorded only after the last batch was delivered."""
        self.problems = []
        store = self.ctx.state
        fetched: list[Payload] = []
        good: list[Observation] = []
        for request in requests:
            url = redact(self.fetcher.url_for(request))
            validators = store.get(self.id).validators.get(url) if conditional else None
            payload = await self.fetcher.fetch(request, validators)
            if payload is None:
                log.info("not modified", extra={"feed": self.id, "url": url})
                continue
            fetched.append(payload)
            if payload.empty:
                continue
            try:
                observations = self.parse(payload)
            except Exception as exc:  # a parser bug or bad data must never crash the collector
                self.breaker.record_failure()
                raise _wrap_parse_error(self.id, url, exc) from exc
            good.extend(self._screen(observations, url))
        by_day: dict[str, list[Observation]] = defaultdict(list)
        for obs in self._merge(good):
            if since is None or obs.day >= since:
                by_day[obs.day].append(obs)
        for day in sorted(by_day):
            yield by_day[day]
        # Resumed after the last yield: the runner has delivered every batch.
        if commit and fetched:
            state = store.get(self.id)
            for payload in fetched:
                pairs = (("etag", payload.etag), ("last_modified", payload.last_modified))
                entry = {k: v for k, v in pairs if v}
                if entry:
                    key = redact(payload.url)
                    state.validators.pop(key, None)
                    state.validators[key] = entry
            # Dated URLs (CBR's date_req, BoE's date window) never come back: keep the newest only.
            while len(state.validators) > MAX_VALIDATORS:
                del state.validators[next(iter(state.validators))]
            if by_day:
                newest = max(by_day)
                if state.last_day is None or newest > state.last_day:
                    state.last_day = newest
            store.save(self.id, state)


class MarketFeed(ProviderFeed):
    """A market's ticker over REST (mode "poll") or its WebSocket stream (mode "stream").

    A batch holds the pairs of one poll or one stream window, all stamped with the same
    observation time, so the validator can cross them through the same source's EUR pair.
    """

    kind: str = LIVE
    mode: str = "poll"

    @property
    def pairs(self) -> list[str]:
        value = self.option("pairs", [])
        return [str(p) for p in value] if isinstance(value, list) else []

    def ticker_requests(self) -> list[Request]:
        raise NotImplementedError

    def parse_ticker(self, payload: Payload, observed_at: dt.datetime) -> list[Observation]:
        raise NotImplementedError

    def bid_ask_observation(
        self,
        name: str,
        pair: tuple[str, str],
        bid: Any,
        ask: Any,
        observed_at: dt.datetime,
        fetched_at: dt.datetime,
    ) -> list[Observation]:
        """The mid of one REST ticker's bid and ask; [] (and a reported problem) when either is unusable."""
        base, quote = pair
        try:
            bid_text = price_text(bid, f"{name} bid")
            ask_text = price_text(ask, f"{name} ask")
            value = mid(bid_text, ask_text)
        except FeedError as exc:
            self.report(f"{base}/{quote}: {exc}")
            return []
        return [
            self.observation(
                base, quote, value, observed_at.date(), observed_at, fetched_at, bid_text, ask_text
            )
        ]

    async def collect(self) -> AsyncIterator[Sequence[Observation]]:
        self.problems = []
        batch: list[Observation] = []
        observed_at = self.ctx.clock()
        for request in self.ticker_requests():
            url = redact(self.fetcher.url_for(request))
            payload = await self.fetcher.fetch(request)
            if payload is None:
                continue
            try:
                observations = self.parse_ticker(payload, observed_at)
            except Exception as exc:
                self.breaker.record_failure()
                raise _wrap_parse_error(self.id, url, exc) from exc
            batch.extend(self._screen(observations, url))
        if batch:
            yield batch
