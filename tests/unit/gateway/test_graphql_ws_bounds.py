"""GraphQL subscriptions' bound (#17): a connection whose writes stall is closed with 4008.

The server side is a test double of the ASGI server only (its receive/send callables).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.websockets import WebSocket

from kurs.rates.v1 import rates_pb2
from kurs_gateway.routes import graphql, graphql_ws
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot

SUBSCRIPTION = (
    'subscription { rates(base: "EUR", symbols: ["USD"]) { kind sequence rates { currency value } } }'
)


def rate(code: str, value: str) -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date="2026-10-30", observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


class Peer:
    """Sends connection_init and one subscription; its socket stalls after `stall_after` writes."""

    def __init__(self, stall_after: int) -> None:
        self.inbox: list[dict[str, Any]] = [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": '{"type": "connection_init"}'},
            {"type": "websocket.receive", "text": orjson.dumps(
                {"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}}
            ).decode()},
        ]  # fmt: skip
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.stall_after = stall_after
        self.ended = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.inbox:
            return self.inbox.pop(0)
        await self.ended.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            if len(self.sent) >= self.stall_after:
                await asyncio.Event().wait()  # a write that never completes
            self.sent.append(orjson.loads(message["text"]))
        elif message["type"] == "websocket.close":
            self.closed = (message.get("code", 1000), message.get("reason", ""))
            self.ended.set()


async def test_a_stalled_subscription_connection_is_closed_with_4008(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphql_ws, "WRITE_TIMEOUT", 0.2)
    snapshot = LiveSnapshot()
    snapshot.replace(1, [rate("USD", "1.1"), rate("GBP", "0.8")])
    state = SimpleNamespace(
        access=SimpleNamespace(registry=None),
        graphql_schema=graphql.build(),
        snapshot=snapshot,
        rates_stub=None,
        settings=GatewaySettings(),
    )
    peer = Peer(stall_after=2)  # connection_ack and the snapshot get through, then nothing
    scope = {
        "type": "websocket",
        "path": "/graphql",
        "query_string": b"",
        "headers": [],
        "subprotocols": [graphql_ws.PROTOCOL],
        "app": SimpleNamespace(state=state),
    }
    served = asyncio.create_task(graphql_ws.graphql_ws(WebSocket(scope, peer.receive, peer.send)))  # type: ignore[arg-type]
    for _ in range(500):
        if len(peer.sent) == 2:
            break
        await asyncio.sleep(0.01)
    assert peer.sent[0] == {"type": "connection_ack"}
    assert peer.sent[1]["payload"]["data"]["rates"]["kind"] == "snapshot"
    snapshot.update(2, [rate("USD", "1.2")])
    await asyncio.wait_for(served, 5)
    assert peer.closed is not None
    assert peer.closed[0] == graphql_ws.SLOW_CONSUMER
    assert peer.closed[1].startswith("slow consumer")
