"""Runs the feeds: once-feeds at start and on demand, stream-feeds continuously."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from kurs_collector.delivery import Deliverer, DeliveryError
from kurs_collector.feeds.base import Feed, FeedError
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


class Collector:
    def __init__(self, feeds: list[tuple[Feed, bool]], deliverer: Deliverer) -> None:
        self.feeds = {feed.id: feed for feed, _ in feeds}
        self.health = {
            feed.id: FeedHealth(feed.id, feed.source, feed.description, enabled) for feed, enabled in feeds
        }
        self.deliverer = deliverer
        self._locks = {feed.id: asyncio.Lock() for feed, _ in feeds}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Run every enabled feed once (once-feeds) or forever (stream-feeds), in the background."""
        for feed_id, feed in self.feeds.items():
            if self.health[feed_id].enabled:
                coro = self._stream(feed) if feed.mode == "stream" else self._run_logged(feed_id)
                task = asyncio.create_task(coro, name=f"feed:{feed_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_logged(self, feed_id: str) -> None:
        with contextlib.suppress(FeedError, DeliveryError):
            await self.run(feed_id)

    async def run(self, feed_id: str) -> RunResult:
        """Run a once-feed now; returns after every batch was acknowledged by the validator."""
        feed = self.feeds.get(feed_id)
        if feed is None:
            raise UnknownFeed(feed_id)
        if feed.mode == "stream":
            raise FeedBusy(f"{feed_id} is a streaming feed; it runs continuously when enabled")
        health = self.health[feed_id]
        async with self._locks[feed_id]:
            health.attempt(utcnow())
            total = accepted = rejected = 0
            try:
                async for batch in feed.collect():
                    done = await self.deliverer.deliver(batch)
                    total += len(batch)
                    accepted += done.accepted
                    rejected += done.rejected
            except (FeedError, DeliveryError) as exc:
                health.failure(utcnow(), str(exc))
                log.error("feed run failed", extra={"feed": feed_id, "error": str(exc)})
                raise
            health.success(utcnow(), total)
            log.info(
                "feed run delivered",
                extra={
                    "feed": feed_id,
                    "observations": total,
                    "accepted": accepted,
                    "rejected": rejected,
                    "latency_ms": health.last_latency_ms,
                },
            )
            return RunResult(total, accepted, rejected)

    async def _stream(self, feed: Feed) -> None:
        health = self.health[feed.id]
        delay = 1.0
        while True:
            health.attempt(utcnow())
            try:
                async for batch in feed.collect():
                    await self.deliverer.deliver(batch)
                    health.progress(len(batch))
                    health.last_success_at = utcnow()
                    delay = 1.0
                return
            except (FeedError, DeliveryError) as exc:
                health.failure(utcnow(), str(exc))
                log.error("stream feed failed", extra={"feed": feed.id, "error": str(exc), "retry_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
