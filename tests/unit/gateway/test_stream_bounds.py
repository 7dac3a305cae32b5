"""WS /ws/rates/stream bounds (#17) through the real handler, under a scripted ASGI server.

The server side is a test double of the ASGI server only (its receive/send callables): one
client's socket stalls after the snapshot (as when a reader stops reading and every buffer on
the way is full); another keeps reading. The slow one must be closed with 4008 and its queue
released, while the fast one receives every update.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.websockets import WebSocket

from kurs.rates.v1 import rates_pb2
from kurs_gateway.broadcast import SLOW_CONSUMER, Broadcaster
from kurs_gateway.routes.stream import serve_stream
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot


def rate(code: str, value: str) -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date="2026-10-30", observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


class Peer:
    """The ASGI server's side of one WebSocket; `stall_after` writes, its socket stops draining."""

    def __init__(self, stall_after: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.stall_after = stall_after
        self.connected = False
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        await self.gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            if self.stall_after is not None and len(self.sent) >= self.stall_after:
                await asyncio.Event().wait()  # a write that never completes
            self.sent.append(orjson.loads(message["text"]))
        elif message["type"] == "websocket.close":
            self.closed = (message.get("code", 1000), message.get("reason", ""))

    def socket(self, query: bytes) -> WebSocket:
        scope = {"type": "websocket", "path": "/ws/rates/stream", "query_string": query, "headers": []}
        return WebSocket(scope, self.receive, self.send)  # type: ignore[arg-type]


async def until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached within 5 s")


async def test_a_slow_consumer_is_closed_with_4008_while_a_fast_one_gets_every_update() -> None:
    snapshot = LiveSnapshot()
    snapshot.replace(1, [rate("USD", "1.1"), rate("GBP", "0.8")])
    state = SimpleNamespace(
        snapshot=snapshot, settings=GatewaySettings(client_queue=3, heartbeat_seconds=60), rates_stub=None
    )
    slow, fast = Peer(stall_after=1), Peer()
    slow_task = asyncio.create_task(serve_stream(slow.socket(b"symbols=USD&base=EUR"), state))
    fast_task = asyncio.create_task(serve_stream(fast.socket(b"symbols=USD&base=EUR"), state))
    await until(lambda: len(slow.sent) == 1 and len(fast.sent) == 1)
    for i in range(8):
        snapshot.update(2 + i, [rate("USD", f"1.{20 + i}")])
        await until(lambda i=i: len(fast.sent) == 2 + i)
    await asyncio.wait_for(slow_task, 5)  # the stalled handler was stopped, not left hanging
    assert slow.closed is not None
    assert slow.closed[0] == SLOW_CONSUMER
    assert slow.closed[1].startswith("slow consumer")
    assert [m["rates"] for m in fast.sent[1:]] == [{"USD": f"1.{20 + i}"} for i in range(8)]
    assert fast.closed is None
    broadcaster: Broadcaster = state.ws_broadcaster
    assert broadcaster.dropped == 1
    assert broadcaster.clients == 1
    fast.gone.set()
    await asyncio.wait_for(fast_task, 5)
    assert broadcaster.clients == 0
    assert not broadcaster.views


async def test_bad_parameters_still_close_with_1008() -> None:
    snapshot = LiveSnapshot()
    snapshot.replace(1, [rate("USD", "1.1")])
    state = SimpleNamespace(snapshot=snapshot, settings=GatewaySettings(), rates_stub=None)
    peer = Peer()
    await asyncio.wait_for(serve_stream(peer.socket(b"symbols=XXX"), state), 5)
    assert peer.sent[0]["invalid_params"][0]["name"] == "symbols"
    assert peer.closed is not None
    assert peer.closed[0] == 1008
