"""The native stream listener on the wire: raw sockets sending what a well-behaved client cannot
(non-upgrade requests, slow heads, unmasked or oversized frames), slow and vanishing consumers,
and the listener's shutdown."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
from typing import Any

import pytest
from websockets.asyncio.client import connect

from kurs_gateway.routes.stream import PATH, broadcaster_of
from kurs_gateway.stream_listener import StreamListener
from support.native_stream import closed_with, message, rate, serving, until, url

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
