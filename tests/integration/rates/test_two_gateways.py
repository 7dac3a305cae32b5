"""Two rates replicas and two gateways on one PostgreSQL and one Redis: a WebSocket client of
gateway B sees an update that entered through replica A."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from conftest import serve_gateway
from support.rates_replicas import Replica, accepted, fixing

from .conftest import REDIS_URL

pytestmark = pytest.mark.integration


async def receive(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
        if message["type"] == kind:
            return message


async def test_websocket_on_gateway_b_sees_update_ingested_through_replica_a(
    pg_dsn: str, redis_prefix: str, replicas: Callable[..., Awaitable[Replica]]
) -> None:
    a = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    b = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    await a.ingest(*fixing("2026-11-02", USD="1.1600", GBP="0.8800"))
    async with (
        serve_gateway(a.service.port, 0, heartbeat_seconds=30) as gateway_a,
        serve_gateway(b.service.port, 0, heartbeat_seconds=30) as gateway_b,
    ):
        stream = "/ws/rates/stream?symbols=USD,GBP&base=EUR"
        async with (
            connect(gateway_b.replace("http://", "ws://") + stream) as on_b,
            connect(gateway_a.replace("http://", "ws://") + stream) as on_a,
        ):
            assert (await receive(on_b, "snapshot"))["rates"] == {"USD": "1.1600", "GBP": "0.8800"}
            await receive(on_a, "snapshot")
            reply = await a.ingest(accepted("USD", "1.1612", "2026-11-02T16:00:00+00:00"))
            update = await receive(on_b, "update")
            assert update["rates"] == {"USD": "1.1612"}
            assert update["sequence"] == reply.sequence
            assert (await receive(on_a, "update"))["sequence"] == reply.sequence
