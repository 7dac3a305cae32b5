"""The native stream listener over real sockets: messages, resumes, keys, metrics, its port.

The listener runs on a free port with a real LiveSnapshot and broadcaster (tests/support/
native_stream.py); clients are the `websockets` library. Bad parameters are checked against the
ASGI route's own answers (routes/stream.py `serve_stream` under a scripted ASGI server), so both
doors close the same way. What a well-behaved client cannot send: test_stream_listener_wire.py.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kurs_gateway.routes.stream import PATH, broadcaster_of, serve_stream
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot
from kurs_gateway.stream_listener import StreamListener
from support.native_stream import message, rate, serving, until, url


async def test_snapshot_then_the_update_after_a_snapshot_change() -> None:
    async with serving() as (listener, snapshot), connect(url(listener, "symbols=USD,GBP&base=EUR")) as ws:
        assert await message(ws) == {
            "type": "snapshot",
            "sequence": 1,
            "base": "EUR",
            "date": "2026-10-30",
            "rates": {"USD": "1.1", "GBP": "0.8"},
        }
        snapshot.update(2, [rate("USD", "1.2"), rate("JPY", "171")])
        assert await message(ws) == {
            "type": "update",
            "sequence": 2,
            "base": "EUR",
            "date": "2026-10-30",
            "rates": {"USD": "1.2"},
        }
        assert broadcaster_of(listener.state).clients == 1
    await until(lambda: broadcaster_of(listener.state).clients == 0)


async def test_a_cross_base_view_and_its_heartbeat() -> None:
    async with (
        serving(heartbeat_seconds=0.2) as (listener, snapshot),
        connect(url(listener, "symbols=GBP&base=USD")) as ws,
    ):
        assert (await message(ws))["rates"] == {"GBP": "0.7272727273"}
        assert await message(ws) == {"type": "heartbeat", "sequence": 1}
        snapshot.update(2, [rate("USD", "1.25"), rate("GBP", "0.85")])
        assert (await message(ws))["rates"] == {"GBP": "0.68"}


async def test_a_ping_is_answered_with_a_pong() -> None:
    async with serving() as (listener, _), connect(url(listener)) as ws:
        await message(ws)
        latency = await asyncio.wait_for(await ws.ping(b"are you there"), timeout=5)
        assert latency >= 0


async def test_since_resumes_with_what_was_missed() -> None:
    async with serving() as (listener, snapshot):
        async with connect(url(listener, "symbols=USD,JPY&base=EUR")) as ws:
            first = await message(ws)
        snapshot.update(2, [rate("USD", "1.3")])
        async with connect(url(listener, f"symbols=USD,JPY&base=EUR&since={first['sequence']}")) as ws:
            assert await message(ws) == {
                "type": "update",
                "sequence": 2,
                "base": "EUR",
                "date": "2026-10-30",
                "rates": {"USD": "1.3"},
            }
        async with connect(url(listener, "symbols=USD&base=EUR&since=0")) as ws:
            assert (await message(ws))["type"] == "snapshot"


async def test_a_close_from_the_client_is_echoed_and_the_client_leaves() -> None:
    async with serving() as (listener, _):
        async with connect(url(listener)) as ws:
            await message(ws)
            await asyncio.wait_for(ws.close(4000, "bye"), timeout=5)
        assert ws.close_code == 4000  # our echo of its code
        await until(lambda: not listener.connections)
        assert broadcaster_of(listener.state).clients == 0


async def test_before_any_rate_is_loaded_the_client_is_told_to_retry() -> None:
    async with serving(ready=False) as (listener, _), connect(url(listener)) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), timeout=5)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (
        1013,
        "rates are not available yet; retry shortly",
    )


class AsgiPeer:
    """The ASGI server's side of one WebSocket on the main port (scripted receive/send)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.connected = False

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.texts.append(message["text"])
        elif message["type"] == "websocket.close":
            self.closed = (message.get("code", 1000), message.get("reason", ""))


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("symbols=XXXX", "symbols"),
        ("base=ZZZ", "base"),
        ("foo=1", "foo"),
        ("since=-1", "since"),
        ("since=%C2%B2", "since"),
        ("source=not%20a%20source", "source"),
    ],
)
async def test_bad_parameters_close_with_the_asgi_routes_message_code_and_reason(
    query: str, param: str
) -> None:
    async with serving() as (listener, _):
        peer = AsgiPeer()
        scope = {"type": "websocket", "path": PATH, "query_string": query.encode(), "headers": []}
        await asyncio.wait_for(serve_stream(WebSocket(scope, peer.receive, peer.send), listener.state), 5)  # type: ignore[arg-type]
        async with connect(url(listener, query)) as ws:
            text = await asyncio.wait_for(ws.recv(), timeout=5)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), timeout=5)
    assert json.loads(text)["invalid_params"][0]["name"] == param
    assert [text] == peer.texts
    assert info.value.rcvd is not None
    assert (
        (info.value.rcvd.code, info.value.rcvd.reason) == peer.closed == (1008, f"invalid parameter: {param}")
    )


# ---------------------------------------------------------------- keys and limits


async def test_the_key_guard_decides_as_on_the_main_port() -> None:
    async with serving(keys=["k-secret"]) as (listener, _):
        with pytest.raises(InvalidStatus) as info:
            await connect(url(listener, "symbols=USD"))
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body or b"")["detail"] == "a valid API key is required"
        assert info.value.response.headers["www-authenticate"] == "Bearer"
        with pytest.raises(InvalidStatus) as info:
            await connect(url(listener, "symbols=USD&api_key=wrong"))
        assert info.value.response.status_code == 401
        async with connect(url(listener, "symbols=USD&api_key=k-secret")) as ws:
            assert (await message(ws))["type"] == "snapshot"
        async with connect(url(listener, "symbols=USD"), additional_headers={"X-API-Key": "k-secret"}) as ws:
            assert (await message(ws))["type"] == "snapshot"


async def test_the_rate_limit_refuses_with_429_and_retry_after() -> None:
    async with serving(rate_limit_per_second=0.01, rate_limit_burst=1) as (listener, _):
        async with connect(url(listener)) as ws:
            assert (await message(ws))["type"] == "snapshot"
        with pytest.raises(InvalidStatus) as info:
            await connect(url(listener))
        assert info.value.response.status_code == 429
        assert int(info.value.response.headers["retry-after"]) >= 1


# ---------------------------------------------------------------- raw sockets


class Tally:
    """Stands in for a prometheus gauge or counter child (inc/dec)."""

    def __init__(self) -> None:
        self.value = 0

    def inc(self, n: int = 1) -> None:
        self.value += n

    def dec(self, n: int = 1) -> None:
        self.value -= n


async def test_connections_and_messages_are_counted_for_metrics() -> None:
    async with serving() as (listener, snapshot):
        listener.gauge, listener.messages = Tally(), Tally()
        await listener.stop()
        await listener.start()  # with the counters from the start, as the app passes them
        a = await connect(url(listener, "symbols=USD&base=EUR"))
        b = await connect(url(listener, "symbols=GBP&base=EUR"))
        await message(a)
        await message(b)
        assert listener.gauge.value == 2
        snapshot.update(2, [rate("USD", "1.2"), rate("GBP", "0.9")])
        await message(a)
        await message(b)
        assert listener.messages.value == 4  # two snapshots, two updates
        await a.close()
        await b.close()
        await until(lambda: listener.gauge.value == 0)


async def test_a_second_gateway_on_a_taken_stream_port_fails_at_start() -> None:
    """One worker owns its port: a second gateway there fails loudly instead of taking half the
    clients (SO_REUSEPORT only between the workers of one gateway)."""
    async with serving() as (first, _):
        second = StreamListener(
            SimpleNamespace(snapshot=LiveSnapshot()), GatewaySettings(stream_port=first.port), None
        )
        with pytest.raises(OSError, match="in use"):
            await second.start()


async def test_workers_of_one_gateway_share_the_stream_port() -> None:
    async with serving(workers=2) as (first, _):
        second = StreamListener(
            SimpleNamespace(snapshot=LiveSnapshot()), GatewaySettings(stream_port=first.port, workers=2), None
        )
        await second.start()
        try:
            assert second.port == first.port
        finally:
            await second.stop()
