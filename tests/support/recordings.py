"""Provider messages recorded (or written from documentation) under tests/fixtures/sources: read as
the feed tests need them, and replayed to a stream feed running under the FeedRunner."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.fake_exchanges import FakeWsServer, MakeFeed, RecordingDeliverer, running

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
# The market feeds' default "now" in their tests (the collector conftest's NOW): after every fixture.
MARKET_NOW = dt.datetime(2025, 1, 20, 12, tzinfo=dt.UTC)


class Recordings:
    """One provider's folder under tests/fixtures/sources."""

    def __init__(self, provider: str) -> None:
        self.folder = SOURCES / provider

    def lines(self, name: str) -> list[str]:
        return (self.folder / name).read_text().splitlines()

    def raw(self, name: str) -> Any:
        """The fixture read independently of the feed, numbers as their text."""
        return json.loads((self.folder / name).read_text(), parse_float=str)


async def replay_stream(
    make: MakeFeed, source: str, pairs: Sequence[str], messages: Sequence[str], batches: int
) -> tuple[list[list[Any]], Any, RecordingDeliverer]:
    """Serve `messages` (after the client's first message) from a fake WebSocket server to a
    `source` feed of `pairs` running under the FeedRunner, until `batches` batches are delivered.
    Returns what the server received (per connection), the feed and the deliverer."""
    script: list[Any] = [("recv",), *[("send", m) for m in messages], ("hold",)]
    async with FakeWsServer([script]) as ws:
        feed = make(source, "http://unused.invalid", ws_url=ws.url, pairs=list(pairs))
        deliverer = RecordingDeliverer()
        async with running([feed], deliverer):
            await deliverer.wait_for(batches)
    return ws.received, feed, deliverer
