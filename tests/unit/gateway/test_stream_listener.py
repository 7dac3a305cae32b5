"""The native stream listener over real sockets: handshake, messages, bounds, keys, closes.

The listener runs on a free port with a real LiveSnapshot and broadcaster; clients are the
`websockets` library or raw sockets (for what a well-behaved client cannot send). Bad
parameters are checked against the ASGI route's own answers (routes/stream.py `serve_stream`
under a scripted ASGI server), so both doors close the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kurs.rates.v1 import rates_pb2
from kurs_gateway.keys.access import Access
from kurs_gateway.routes.stream import PATH, StreamFront, broadcaster_of, serve_stream
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


KEY = base64.b64encode(b"0123456789abcdef").decode()


def upgrade(path: str = PATH, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def raw(
    listener: StreamListener, *, rcvbuf: int | None = None, limit: int = 1 << 20
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection; its reader stops reading the socket beyond 2 x `limit` unread bytes."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", listener.port))
    return await asyncio.open_connection(sock=sock, limit=limit)


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    return int(head.split(b" ")[1]), head


async def server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await asyncio.wait_for(reader.readexactly(2), timeout=5)
    assert not second & 0x80  # server frames are unmasked
    n = second & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(n)


async def opened(listener: StreamListener, query: str = "symbols=USD", **kw: Any) -> tuple[Any, Any]:
    reader, writer = await raw(listener, **kw)
    writer.write(upgrade(f"{PATH}?{query}"))
    status, head = await answer(reader)
    assert status == 101, head
    accept = base64.b64encode(hashlib.sha1(KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert b"\r\nSec-WebSocket-Accept: " + accept + b"\r\n" in head
    return reader, writer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /rates/latest HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /ws/rates/stream HTTP/1.1\r\nHost: x\r\n\r\n", 426),
        (upgrade(extra="X-Big: " + "a" * 9000 + "\r\n"), 431),
        (b"GET /ws/rates/stream HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"b" * 9000, 431),
        (b"nonsense\r\n\r\n", 400),
    ],
)
async def test_requests_that_are_not_a_stream_upgrade_get_an_http_status(
    request_bytes: bytes, status: int
) -> None:
    async with serving(max_header_bytes=8192) as (listener, _):
        reader, writer = await raw(listener)
        writer.write(request_bytes)
        got, head = await answer(reader)
        assert got == status, head
        assert b"Connection: close" in head
        length = int(
            next(v for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")) if k == b"Content-Length")
        )
        assert json.loads(await reader.readexactly(length))["status"] == status
        writer.close()


async def test_a_head_that_does_not_arrive_in_time_closes_the_connection() -> None:
    async with serving(header_read_timeout_seconds=0.2) as (listener, _):
        reader, writer = await raw(listener)
        writer.write(b"GET /ws/rates/stream HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        await until(lambda: not listener.connections)
        writer.close()


def masked(opcode: int, payload: bytes, *, mask: bool = True) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 | opcode, 127)) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return (
        bytes((head[0], head[1] | 0x80))
        + head[2:]
        + key
        + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    )


async def close_code(reader: asyncio.StreamReader) -> tuple[int, str]:
    while True:
        opcode, payload = await server_frame(reader)
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big"), payload[2:].decode()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked(0x1, b"hello", mask=False), 1002),
        (masked(0x2, b"x" * 70_000), 1009),
        (bytes((0x83, 0x80)) + b"mask", 1002),
    ],
)
async def test_unmasked_unknown_or_oversized_client_frames_fail_the_connection(
    frame: bytes, code: int
) -> None:
    async with serving() as (listener, _):
        reader, writer = await opened(listener)
        writer.write(frame)
        assert (await close_code(reader))[0] == code
        await until(lambda: broadcaster_of(listener.state).clients == 0)
        writer.close()


async def test_messages_and_pings_from_a_raw_client() -> None:
    async with serving() as (listener, _):
        reader, writer = await opened(listener)
        assert (await server_frame(reader))[0] == 0x1  # the snapshot
        writer.write(masked(0x1, b"ignored") + masked(0x9, b"ping-1"))
        assert await server_frame(reader) == (0xA, b"ping-1")
        writer.write(masked(0x8, (1000).to_bytes(2, "big")))
        assert await server_frame(reader) == (0x8, (1000).to_bytes(2, "big"))
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()


async def test_a_slow_consumer_is_closed_with_4008_while_a_fast_one_gets_every_update() -> None:
    codes = [f"{a}{b}{c}" for a in "ABCDEFGH" for b in "KLMNOPQR" for c in "STUVWXYZ"][:500]
    async with serving(client_queue=2) as (listener, snapshot):
        snapshot.replace(1, [rate(code, "1.0") for code in codes])
        fast = await connect(url(listener, "base=EUR"), max_size=None)
        got: list[dict[str, Any]] = []

        async def read_fast() -> None:
            async for text in fast:
                got.append(json.loads(text))

        reading = asyncio.create_task(read_fast())
        reader, writer = await opened(listener, "base=EUR", rcvbuf=4096, limit=1024)  # reads no more
        broadcaster = broadcaster_of(listener.state)
        sent = 0
        for i in range(2000):
            snapshot.update(2 + i, [rate(code, f"1.{i:04d}") for code in codes])
            sent += 1
            await asyncio.sleep(0.002)
            if broadcaster.dropped:
                break
        assert broadcaster.dropped == 1
        await until(lambda: len(got) == sent + 1)
        assert [m["sequence"] for m in got[1:]] == list(range(2, 2 + sent))
        code, reason = await close_code(reader)  # after everything buffered before the drop
        assert code == 4008
        assert reason.startswith("slow consumer: more than 2048 bytes unsent")
        await until(lambda: broadcaster.clients == 1)
        writer.close()
        reading.cancel()
        await fast.close()


async def test_clients_that_vanish_mid_write_leave_the_others_served() -> None:
    async with serving() as (listener, snapshot):
        vanishing = [await opened(listener, "base=USD") for _ in range(40)]
        async with connect(url(listener, "base=USD")) as ws:
            await message(ws)
            for i, (_, writer) in enumerate(vanishing):
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()  # a reset, without a close frame
                snapshot.update(2 + i, [rate("USD", f"1.{100 + i}")])
                if i % 4 == 0:
                    await asyncio.sleep(0)
            while (last := await message(ws))["sequence"] < 41:  # changes may come merged
                assert last["type"] == "update"
            assert last["rates"]["GBP"] == "0.7023705004"  # 0.8 / 1.139: the 40th change
            await until(lambda: broadcaster_of(listener.state).clients == 1)
            assert len(listener.connections) == 1
            snapshot.update(100, [rate("USD", "2")])
            assert (await message(ws))["sequence"] == 100


async def test_stopping_the_listener_tells_every_client_it_is_going_away() -> None:
    async with serving() as (listener, _):
        ws = await connect(url(listener))
        await message(ws)
        await asyncio.wait_for(listener.stop(), timeout=5)
        assert (await closed_with(ws)) == (1001, "the gateway is shutting down")
        assert not listener.connections
        assert broadcaster_of(listener.state).clients == 0


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), timeout=5)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


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
