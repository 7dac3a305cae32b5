"""The native stream listener on a free port with a real LiveSnapshot and broadcaster, for tests
(tests/unit/gateway/test_stream_listener*.py), and the client-side helpers they share."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from kurs.rates.v1 import rates_pb2
from kurs_gateway.keys.access import Access
from kurs_gateway.routes.stream import PATH, StreamFront
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot
from kurs_gateway.stream_listener import StreamListener


def rate(code: str, value: str) -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date="2026-10-30", observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


@contextlib.asynccontextmanager
async def serving(
    *, ready: bool = True, keys: list[str] | None = None, **overrides: Any
) -> AsyncIterator[tuple[StreamListener, LiveSnapshot]]:
    snapshot = LiveSnapshot()
    if ready:
        snapshot.replace(1, [rate("USD", "1.1"), rate("GBP", "0.8"), rate("JPY", "170")])
    options: dict[str, Any] = {"stream_port": 0, "heartbeat_seconds": 60, **overrides}
    if keys is not None:
        options["api_keys"] = keys
    settings = GatewaySettings(**options)
    state = SimpleNamespace(snapshot=snapshot, settings=settings, rates_stub=None)
    gate = None
    if keys is not None or settings.rate_limit_per_second > 0:  # as app.py: the same guard chain
        gate = Access(settings).wrap(StreamFront(SimpleNamespace(state=state)))
    listener = StreamListener(state, settings, gate)
    await listener.start()
    try:
        yield listener, snapshot
    finally:
        await listener.stop()


def url(listener: StreamListener, query: str = "", path: str = PATH) -> str:
    return f"ws://127.0.0.1:{listener.port}{path}?{query}"


async def message(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout=5)))


async def until(condition: Any, seconds: float = 5) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within {seconds} s")


# ---------------------------------------------------------------- the protocol


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), timeout=5)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason
