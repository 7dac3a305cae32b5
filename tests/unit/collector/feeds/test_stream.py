"""The WebSocket stream base (feeds/stream.py): its connection takes the source's timeouts."""

from __future__ import annotations

from typing import Any

import pytest

from kurs_collector.errors import FeedError
from support.fake_exchanges import MakeFeed


async def _connect_kwargs(make: MakeFeed, monkeypatch: pytest.MonkeyPatch, **options: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def refuse(url: str, **kwargs: Any) -> Any:
        seen.update(kwargs, url=url)
        raise OSError("refused by the test")

    monkeypatch.setattr("websockets.asyncio.client.connect", refuse)
    feed = make("kraken-ws", "http://127.0.0.1:9", ws_url="ws://127.0.0.1:9/v2", **options)
    with pytest.raises(FeedError, match="refused by the test"):
        async for _ in feed.collect():
            pass
    return seen


async def test_close_timeout_is_the_sources_setting(make: MakeFeed, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = await _connect_kwargs(make, monkeypatch, ws_close_timeout_seconds=0.25, timeout_seconds=3.0)
    assert (seen["url"], seen["close_timeout"], seen["open_timeout"]) == ("ws://127.0.0.1:9/v2", 0.25, 3.0)


async def test_close_timeout_defaults_to_one_second(make: MakeFeed, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await _connect_kwargs(make, monkeypatch))["close_timeout"] == 1.0
