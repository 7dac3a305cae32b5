"""Local stand-ins for providers: an HTTP server and a WebSocket server on 127.0.0.1.

Test doubles, not runtime code: used by the tests and by tools/bench_live.py (which puts tests/
on sys.path). Point a source's base_url / ws_url at them. They serve recorded payloads through
the real fetch and parse code, honour ETag / Last-Modified, and can misbehave on purpose
(truncate a body, stall, send garbage, cut a WebSocket frame in half). They never talk to
anything but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve

from kurs_collector.delivery import Delivered
from kurs_collector.runner import FeedRunner
from kurs_common.observation import Observation


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Announce the full length but send only this many bytes, then close the connection.
    truncate_to: int | None = None
    delay: float = 0.0


Handler = Callable[[FakeRequest], FakeResponse]
_REASONS = {
    200: "OK",
    304: "Not Modified",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
_REASONS |= {502: "Bad Gateway", 503: "Service Unavailable"}


class _LoopbackServer:
    """Start on a free 127.0.0.1 port, close within 2 s; `async with` does both."""

    _server: asyncio.Server | Server | None = None
    port = 0

    async def start(self) -> Self:
        raise NotImplementedError

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class FakeHttpServer(_LoopbackServer):
    """routes: path -> FakeResponse or handler; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, FakeResponse | Handler] = {}
        self.requests: list[FakeRequest] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, response: FakeResponse | Handler) -> None:
        self.routes[path] = response

    def hits(self, path: str) -> list[FakeRequest]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                parts = urlsplit(target)
                request = FakeRequest(
                    method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers
                )
                self.requests.append(request)
                route = self.routes.get(parts.path)
                if route is None:
                    response = FakeResponse(404, b"Not Found", {"Content-Type": "text/plain"})
                else:
                    response = route(request) if callable(route) else route
                if response.delay:
                    await asyncio.sleep(response.delay)
                response = self._conditional(request, response)
                head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
                out_headers = {"Content-Length": str(len(response.body)), **response.headers}
                head += [f"{k}: {v}" for k, v in out_headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                if response.truncate_to is not None:
                    writer.write(response.body[: response.truncate_to])
                    await writer.drain()
                    writer.close()
                    return
                writer.write(response.body)
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    def _conditional(request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if response.status != 200:
            return response
        etag = response.headers.get("ETag")
        if etag and request.headers.get("if-none-match") == etag:
            return FakeResponse(304, b"", {"ETag": etag})
        modified = response.headers.get("Last-Modified")
        since = request.headers.get("if-modified-since")
        if modified and since and not etag:
            with contextlib.suppress(TypeError, ValueError):
                if email.utils.parsedate_to_datetime(since) >= email.utils.parsedate_to_datetime(modified):
                    return FakeResponse(304, b"", {"Last-Modified": modified})
        return response


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


# A WebSocket script is a list of steps run for each connection, in order:
#   ("send", text)        send a text frame
#   ("recv",)             wait for one message from the client (its subscription)
#   ("sleep", seconds)    pause
#   ("cut",)              write half a frame, then drop the TCP connection
#   ("close",)            close cleanly
#   ("hold",)             keep the connection open and silent until the client leaves
Step = tuple[Any, ...]


class FakeWsServer(_LoopbackServer):
    """Runs `scripts[n]` for the n-th connection (the last script repeats)."""

    def __init__(self, scripts: list[list[Step]] | None = None) -> None:
        self.scripts = scripts or [[("recv",), ("hold",)]]
        self.received: list[list[Any]] = []
        self.connections: set[ServerConnection] = set()
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def broadcast(self, text: str) -> int:
        sent = 0
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.send(text)
                sent += 1
        return sent

    async def _handle(self, connection: ServerConnection) -> None:
        index = len(self.received)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        messages: list[Any] = []
        self.received.append(messages)
        self.connections.add(connection)
        try:
            for step in script:
                kind = step[0]
                if kind == "send":
                    await connection.send(step[1])
                elif kind == "recv":
                    raw = await connection.recv()
                    try:
                        messages.append(json.loads(raw))
                    except ValueError:
                        messages.append(raw)
                elif kind == "sleep":
                    await asyncio.sleep(step[1])
                elif kind == "cut":
                    transport = connection.transport
                    transport.write(b"\x81\x7e\x01\x00" + b'{"channel":"tick')
                    transport.abort()
                    return
                elif kind == "close":
                    await connection.close()
                    return
                elif kind == "hold":
                    await connection.wait_closed()
                    return
        except Exception:
            pass
        finally:
            self.connections.discard(connection)


# --- test support -----------------------------------------------------------------------------
MakeFeed = Callable[..., Any]
Blob = Callable[[str], bytes]


def refused_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def drain(feed: Any) -> list[Sequence[Observation]]:
    """Every batch of one run, each "delivered" before the next is asked for (like the runner)."""
    return [batch async for batch in feed.collect()]


def flatten(batches: Sequence[Sequence[Observation]]) -> list[Observation]:
    return [o for batch in batches for o in batch]


class RecordingDeliverer:
    """Stands in for the validator: records every batch and acknowledges it."""

    def __init__(self) -> None:
        self.batches: list[list[Observation]] = []
        self._arrived = asyncio.Event()

    async def deliver(self, batch: Sequence[Observation]) -> Delivered:
        self.batches.append(list(batch))
        self._arrived.set()
        return Delivered(len(batch), 0)

    async def wait_for(self, count: int, limit: float = 10.0) -> None:
        async with asyncio.timeout(limit):
            while len(self.batches) < count:
                self._arrived.clear()
                await self._arrived.wait()


async def wait_until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polling state owned by other tasks
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(
    feeds: Sequence[Any], deliverer: RecordingDeliverer | None = None, **options: Any
) -> AsyncIterator[FeedRunner]:
    """A FeedRunner over `feeds` (all enabled), delivering to `deliverer` (a new RecordingDeliverer
    by default), started; stopped on leaving the block, whatever happened in it. `options`: the
    runner's keyword arguments (clock, sleep)."""
    runner = FeedRunner([(f, True) for f in feeds], deliverer or RecordingDeliverer(), **options)  # type: ignore[arg-type]
    runner.start()
    try:
        yield runner
    finally:
        await runner.stop()
