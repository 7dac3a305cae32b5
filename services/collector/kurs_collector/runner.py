"""Runs the feeds, each in its own task, so one source's trouble never touches another's.

* once      - at start and on CollectNow (ecb-history);
* scheduled - when a publication is due by its schedule (and at start when behind: catch-up
              after downtime), then again every retry interval while it is late;
* poll      - every poll interval (market REST tickers);
* stream    - continuously; reconnects with exponential backoff and full jitter.

Every batch is delivered (acknowledged by the validator) before the feed records progress,
so what a crash interrupts is fetched and delivered again (at-least-once, idempotent keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kurs_collector.breaker import CLOSED
from kurs_collector.delivery import Deliverer, DeliveryError
from kurs_collector.feeds.base import Feed, FeedError, HttpFeed, MarketFeed
from kurs_collector.feeds.stream import StreamFeed
from kurs_collector.health import FeedHealth
from kurs_common.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    observations: int
    accepted: int
    rejected: int


class UnknownFeed(KeyError):
    pass


class FeedBusy(RuntimeError):
    pass


class FeedDisabled(FeedBusy):
    """A network feed that is not enabled (live switch off or enabled = false) never runs."""


NetworkFeed = HttpFeed | MarketFeed | StreamFeed


class FeedRunner:
    """Runs every enabled feed in its own task and keeps each feed's health (CollectNow: `run`)."""

    def __init__(
        self,
        feeds: list[tuple[Feed, bool]],
        deliverer: Deliverer,
        *,
        disabled_reasons: dict[str, str] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.feeds = {feed.id: feed for feed, _ in feeds}
        self.clock = clock
        self.sleep = sleep
        self.started_at = clock()
        reasons = disabled_reasons or {}
        self.health: dict[str, FeedHealth] = {}
        for feed, enabled in feeds:
            health = FeedHealth(
                feed.id,
                feed.source,
                feed.description,
                enabled,
                mode=feed.mode,
                kind=getattr(feed, "kind", ""),
                disabled_reason="" if enabled else reasons.get(feed.id, "disabled in the configuration"),
            )
            if isinstance(feed, HttpFeed | MarketFeed):
                health.endpoint = feed.fetcher.base_url
            if isinstance(feed, StreamFeed):
                health.endpoint = feed.ws_url
            if isinstance(feed, HttpFeed):
                health.schedule = feed.schedule.label
                health.last_day = feed.ctx.state.get(feed.id).last_day or ""
            if isinstance(feed, HttpFeed | MarketFeed | StreamFeed):
                feed.reporter = self._reporter(health)
            self.health[feed.id] = health
        self.deliverer = deliverer
        self._locks = {feed.id: asyncio.Lock() for feed, _ in feeds}
        self._tasks: set[asyncio.Task[None]] = set()

    def _reporter(self, health: FeedHealth) -> Callable[[str], None]:
        def report(problem: str) -> None:
            health.problem(self.clock(), problem)

        return report

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start every enabled feed in the background, each by its mode."""
        for feed_id, feed in self.feeds.items():
            if not self.health[feed_id].enabled:
                continue
            if isinstance(feed, StreamFeed) or feed.mode == "stream":
                coro = self._stream(feed)
            elif isinstance(feed, HttpFeed):
                coro = self._scheduled(feed)
            elif isinstance(feed, MarketFeed):
                coro = self._poll(feed)
            else:
                coro = self._run_logged(feed_id)
            task = asyncio.create_task(coro, name=f"feed:{feed_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- health -----------------------------------------------------------------------------
    def refresh(self, feed_id: str) -> FeedHealth:
        """Bring the derived figures (missed publications, circuit) up to now."""
        health = self.health[feed_id]
        feed = self.feeds[feed_id]
        if isinstance(feed, HttpFeed | MarketFeed | StreamFeed):
            health.circuit = feed.breaker.state
        if isinstance(feed, HttpFeed) and health.enabled:
            last = feed.last_day
            health.last_day = last.isoformat() if last else ""
            health.publications_missed = feed.schedule.missed(last, self.clock(), self.started_at)
        return health

    def snapshot(self) -> list[FeedHealth]:
        return [self.refresh(feed_id) for feed_id in self.health]

    # --- runs -------------------------------------------------------------------------------
    async def _run_logged(self, feed_id: str) -> None:
        with contextlib.suppress(FeedError, DeliveryError):
            await self.run(feed_id)

    async def run(self, feed_id: str) -> RunResult:
        """Run a feed once now; returns after every batch was acknowledged by the validator."""
        feed = self.feeds.get(feed_id)
        if feed is None:
            raise UnknownFeed(feed_id)
        if feed.mode == "stream":
            raise FeedBusy(f"{feed_id} is a streaming feed; it runs continuously when enabled")
        health = self.health[feed_id]
        if not health.enabled and isinstance(feed, HttpFeed | MarketFeed | StreamFeed):
            raise FeedDisabled(f"{feed_id} is disabled: {health.disabled_reason}")
        async with self._locks[feed_id]:
            health.attempt(self.clock())
            total = accepted = rejected = 0
            try:
                async for batch in feed.collect():
                    done = await self.deliverer.deliver(batch)
                    total += len(batch)
                    accepted += done.accepted
                    rejected += done.rejected
                    self._observed(health, batch)
            except (FeedError, DeliveryError) as exc:
                circuit = feed.breaker.state if isinstance(feed, HttpFeed | MarketFeed) else CLOSED
                health.failure(self.clock(), str(exc), circuit)
                log.error("feed run failed", extra={"feed": feed_id, "error": str(exc), "circuit": circuit})
                raise
            problems = list(getattr(feed, "problems", []))
            health.success(self.clock(), total, len(problems))
            self.refresh(feed_id)
            log.info(
                "feed run delivered",
                extra={
                    "feed": feed_id,
                    "observations": total,
                    "accepted": accepted,
                    "rejected": rejected,
                    "refused_by_collector": len(problems),
                    "latency_ms": health.last_latency_ms,
                },
            )
            return RunResult(total, accepted, rejected)

    @staticmethod
    def _observed(health: FeedHealth, batch: object) -> None:
        stamps = [o.observed_at for o in batch if o.observed_at is not None]  # type: ignore[attr-defined]
        if stamps:
            newest = max(stamps)
            if health.last_observed_at is None or newest > health.last_observed_at:
                health.last_observed_at = newest

    async def _try_run(self, feed_id: str) -> None:
        try:
            await self.run(feed_id)
        except (FeedError, DeliveryError):
            pass  # recorded in health and logged by run()
        except Exception as exc:  # a bug in one adapter must not end the collector
            log.exception("feed run crashed", extra={"feed": feed_id})
            self.health[feed_id].failure(self.clock(), f"internal error: {type(exc).__name__}: {exc}")

    async def _scheduled(self, feed: HttpFeed) -> None:
        health = self.health[feed.id]
        while True:
            now = self.clock()
            if feed.behind(now):
                if feed.breaker.allow():
                    await self._try_run(feed.id)
                now = self.clock()
                self.refresh(feed.id)
                if feed.behind(now):
                    wait = feed.config.retry_interval_seconds
                    if not feed.breaker.allow():
                        wait = max(feed.breaker.retry_after(), 0.05)
                else:
                    wait = (feed.schedule.next_run(now) - now).total_seconds()
            else:
                wait = (feed.schedule.next_run(now) - now).total_seconds()
            wait = max(wait, 0.05)
            health.next_run_at = now + dt.timedelta(seconds=wait)
            await self.sleep(wait)

    async def _poll(self, feed: MarketFeed) -> None:
        health = self.health[feed.id]
        while True:
            if feed.breaker.allow():
                await self._try_run(feed.id)
            wait = feed.config.poll_interval_seconds
            if not feed.breaker.allow():
                wait = max(wait, feed.breaker.retry_after())
            health.next_run_at = self.clock() + dt.timedelta(seconds=wait)
            await self.sleep(wait)

    def _stream_delays(self, feed: Feed) -> tuple[float, float]:
        if isinstance(feed, StreamFeed):
            return feed.config.reconnect_seconds, feed.config.reconnect_max_seconds
        return 1.0, 60.0

    async def _stream(self, feed: Feed) -> None:
        health = self.health[feed.id]
        first, cap = self._stream_delays(feed)
        attempt = 0
        while True:
            health.attempt(self.clock())
            try:
                async for batch in feed.collect():
                    await self.deliverer.deliver(batch)
                    health.progress(len(batch), self.clock())
                    self._observed(health, batch)
                    attempt = 0
                return
            except (FeedError, DeliveryError) as exc:
                error = str(exc)
            except Exception as exc:  # never let one stream end the collector
                log.exception("stream feed crashed", extra={"feed": feed.id})
                error = f"internal error: {type(exc).__name__}: {exc}"
            attempt += 1
            if isinstance(feed, StreamFeed):
                feed.breaker.record_failure()
                circuit = feed.breaker.state
            else:
                circuit = CLOSED
            health.failure(self.clock(), error, circuit)
            delay = random.uniform(first / 2, min(cap, first * 2 ** (attempt - 1)) or first)
            if isinstance(feed, StreamFeed) and not feed.breaker.allow():
                delay = max(delay, feed.breaker.retry_after())
            log.error(
                "stream feed failed, reconnecting",
                extra={"feed": feed.id, "error": error, "retry_s": round(delay, 3)},
            )
            health.next_run_at = self.clock() + dt.timedelta(seconds=delay)
            await self.sleep(delay)
