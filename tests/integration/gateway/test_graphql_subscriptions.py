"""GraphQL subscriptions over graphql-transport-ws against a real gateway and rates service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from conftest import ingest_fixing, serve_gateway
from kurs_gateway.keys import manage
from kurs_gateway.keys.store import open_store
from kurs_rates import server as rates_server
from kurs_rates.server import RatesServer
from kurs_rates.settings import RatesSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PROTOCOL = Subprotocol("graphql-transport-ws")
SUBSCRIPTION = """subscription($base: String, $symbols: [String!]) {
  rates(base: $base, symbols: $symbols) { kind sequence base date rates { currency value } }
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RatesServer]:
    path = tmp_path_factory.mktemp("gql-ws") / "rates.sqlite3"
    service = await rates_server.start(RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{path}"))
    try:
        await ingest_fixing(service.port, "2025-01-02", {"USD": "1.0321", "GBP": "0.82990"})
        yield service
    finally:
        await service.stop(0)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    return message


async def open_session(url: str, payload: dict[str, Any] | None = None) -> ClientConnection:
    ws = await connect(url.replace("http://", "ws://") + "/graphql", subprotocols=[PROTOCOL])
    assert ws.subprotocol == "graphql-transport-ws"
    await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
    assert (await receive(ws))["type"] == "connection_ack"
    return ws


async def test_a_subscription_delivers_the_snapshot_then_an_update(rates: RatesServer) -> None:
    async with serve_gateway(rates.port, 0) as url:
        ws = await open_session(url)
        try:
            variables = {"base": "EUR", "symbols": ["USD", "GBP"]}
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "id": "1",
                        "payload": {"query": SUBSCRIPTION, "variables": variables},
                    }
                )
            )
            first = await receive(ws)
            assert first["type"] == "next"
            assert first["id"] == "1"
            snapshot = first["payload"]["data"]["rates"]
            assert snapshot["kind"] == "snapshot"
            assert snapshot["base"] == "EUR"
            assert snapshot["date"] == "2025-01-02"
            assert {r["currency"]: r["value"] for r in snapshot["rates"]} == {
                "USD": "1.0321",
                "GBP": "0.82990",
            }
            sequence = await ingest_fixing(
                rates.port, "2025-01-03", {"USD": "1.0299", "GBP": "0.82990"}, complete=True
            )
            update = (await receive(ws))["payload"]["data"]["rates"]
            assert update["kind"] == "update"
            assert update["sequence"] == str(sequence)
            assert update["rates"] == [{"currency": "USD", "value": "1.0299"}]  # GBP did not change
            await ws.send(json.dumps({"type": "ping"}))
            assert (await receive(ws))["type"] == "pong"
            await ws.send(json.dumps({"type": "complete", "id": "1"}))
            query = {
                "query": '{ latest(base: "EUR", symbols: ["USD"], source: "blend") { rates { value } } }'
            }
            await ws.send(json.dumps({"type": "subscribe", "id": "2", "payload": query}))
            answer = await receive(ws)
            assert answer["payload"] == {"data": {"latest": {"rates": [{"value": "1.0299"}]}}}
            assert await receive(ws) == {"type": "complete", "id": "2"}
        finally:
            await ws.close()


async def test_bad_arguments_and_protocol_errors(rates: RatesServer) -> None:
    async with serve_gateway(rates.port, 0) as url:
        ws = await open_session(url)
        try:
            bad = {"query": SUBSCRIPTION, "variables": {"base": "XXQ"}}
            await ws.send(json.dumps({"type": "subscribe", "id": "b", "payload": bad}))
            error = await receive(ws)
            assert error["type"] == "error"
            assert error["payload"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "base"}
            await ws.send(json.dumps({"type": "subscribe", "id": "s", "payload": {"query": "{ nope }"}}))
            assert (await receive(ws))["type"] == "error"
            await ws.send(json.dumps({"type": "connection_init"}))
            with pytest.raises(ConnectionClosed) as info:
                await receive(ws)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4429
        finally:
            await ws.close()


async def test_keys_and_scopes_apply_to_subscriptions(rates: RatesServer, tmp_path: Path) -> None:
    url_db = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    store = open_store(url_db)
    await store.open()
    _, reader = await manage.create(store, manage.checked(name="reader", scopes="read"))
    _, streamer = await manage.create(store, manage.checked(name="streamer", scopes="stream"))
    await store.close()
    async with serve_gateway(rates.port, 0, auth="keys", database_url=url_db) as url:
        ws = await connect(url.replace("http://", "ws://") + "/graphql", subprotocols=[PROTOCOL])
        await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": "kurs_wrong"}}))
        with pytest.raises(ConnectionClosed) as info:
            await receive(ws)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4403
        ws = await open_session(url, {"Authorization": f"Bearer {reader}"})
        try:
            await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}}))
            refused = await receive(ws)
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        finally:
            await ws.close()
        ws = await open_session(url, {"apiKey": streamer})
        try:
            await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}}))
            assert (await receive(ws))["payload"]["data"]["rates"]["kind"] == "snapshot"
        finally:
            await ws.close()
