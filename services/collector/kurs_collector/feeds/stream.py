"""A market's WebSocket ticker stream (`StreamFeed`): the third shape a source adapter takes.

A market adapter subclasses it beside its `MarketFeed` (feeds/kraken.py and the like) with
`subscribe_messages()` and `parse_message(message)`; this base connects, subscribes, screens
the ticks and yields one batch per message that carries prices.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import ProviderFeed
from kurs_common.observation import LIVE, Observation

__all__ = ["Reconnect", "StreamFeed"]

log = logging.getLogger(__name__)

PIVOT_HINT = "EUR"


class Reconnect(FeedError):
    """The exchange asked the client to reconnect (or the stream is unusable): end this connection."""


MAX_GARBAGE_IN_A_ROW = 10


class StreamFeed(ProviderFeed):
    """A market's WebSocket ticker stream.

    `collect()` connects, (re)subscribes and yields one batch per message with prices: the
    pairs that changed plus the latest known pairs involving EUR, all stamped with the same
    observation time (the exchange's time of the newest tick, else its arrival). Garbage
    messages are reported and skipped; a run of them, a silent connection (stale_seconds)
    or a connection that drops (even in the middle of a frame) ends the run with FeedError,
    and the runner reconnects with backoff.
    """

    kind: str = LIVE
    mode: str = "stream"
    default_ws_url: ClassVar[str] = ""

    @property
    def pairs(self) -> list[str]:
        value = self.option("pairs", [])
        return [str(p) for p in value] if isinstance(value, list) else []

    @property
    def ws_url(self) -> str:
        return self.config.ws_url or self.default_ws_url

    def subscribe_messages(self) -> list[Any]:
        raise NotImplementedError

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        """Ticks in one decoded JSON message ([] for control messages); FeedError if garbage."""
        raise NotImplementedError

    async def collect(self) -> AsyncIterator[Sequence[Observation]]:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        self.problems = []
        url = self.ws_url
        book: dict[tuple[str, str], Observation] = {}
        garbage = 0
        try:
            async with connect(
                url,
                open_timeout=self.config.timeout_seconds,
                close_timeout=self.config.ws_close_timeout_seconds,
                max_size=4 * 1024 * 1024,
                user_agent_header=self.config.user_agent,
            ) as ws:
                for message in self.subscribe_messages():
                    await ws.send(message if isinstance(message, str) else json.dumps(message))
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), self.config.stale_seconds)
                    except TimeoutError:
                        raise FeedError(f"{self.id}: no message for {self.config.stale_seconds:g}s") from None
                    received = self.ctx.clock()
                    try:
                        decoded = json.loads(raw, parse_float=Decimal)
                        ticks = self.parse_message(decoded, received)
                    except Reconnect as exc:
                        raise FeedError(f"{self.id}: {exc}") from None
                    except Exception as exc:  # any message the parser cannot take is garbage, skipped
                        garbage += 1
                        problem = (
                            f"garbage message ({type(exc).__name__}: {str(exc)[:120]}): {str(raw)[:80]!r}"
                        )
                        log.warning("stream garbage", extra={"feed": self.id, "problem": problem})
                        self.report(problem)
                        if garbage >= MAX_GARBAGE_IN_A_ROW:
                            raise FeedError(f"{self.id}: {garbage} garbage messages in a row") from None
                        continue
                    garbage = 0
                    good = self._screen(ticks, url) if ticks else []
                    if not good:
                        continue
                    observed_at = max(t.observed_at or received for t in good)
                    changed = {(t.base, t.quote): t for t in good}
                    book.update(changed)
                    # The source's EUR pairs go along so the validator can cross this tick at its
                    # own instant; one older than stale_seconds would pass a stale price as fresh.
                    fresh_after = observed_at - dt.timedelta(seconds=self.config.stale_seconds)
                    anchors = [
                        o
                        for k, o in book.items()
                        if k not in changed
                        and PIVOT_HINT in k
                        and (o.observed_at or observed_at) >= fresh_after
                    ]
                    self.breaker.record_success()
                    yield [
                        dataclasses.replace(o, observed_at=observed_at, day=observed_at.date().isoformat())
                        for o in (*changed.values(), *anchors)
                    ]
        except (OSError, WebSocketException) as exc:
            raise FeedError(f"{self.id}: websocket {type(exc).__name__}: {exc}") from exc
