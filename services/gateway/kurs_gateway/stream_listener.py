"""The native stream listener: WS /ws/rates/stream on its own port, framed in the gateway itself.

A raw-asyncio WebSocket server (RFC 6455, `ws_frames`) started by the gateway's lifespan on
`KURS_GATEWAY_STREAM_PORT`; with several workers each binds it (SO_REUSEPORT) and serves its
clients from its own broadcaster (one worker owns the port: a second gateway there fails at
start). It speaks the ASGI route's protocol (routes/stream.py: parameters, messages, `since=`,
`source=`, close codes and reasons, the same key guard).

Why: through an ASGI server every message to every client is one Python call into the server
(under granian also one Python-to-Rust future) and about 150 kB of buffers a client. Here a
connection is one `asyncio.Protocol` and a `TransportClient`: the broadcaster writes each view's
message, framed once, straight into its clients' transports, yielding between chunks.

A connection's life: (1) its head must arrive within `header_read_timeout_seconds` (else it is
closed) and fit in `max_header_bytes` (else 431), as on the main port; another path is 404, a
non-GET 405, a plain request 426, a malformed one 400. (2) With keys or limits configured, the
handshake goes as an ASGI scope through the main port's own guard instance (routes/stream.py
`through_guard`), whose refusal (status, headers, problem) is answered as is. (3) 101, then what
the ASGI route does: 1013 before rates are loaded or while the rates service is down, an error
message and 1008 for a bad parameter, else the view's first message and the broadcaster's.
Pings get pongs, client messages are read and ignored, an unmasked or malformed frame fails the
connection with 1002, a frame over 64 KiB with 1009, a close is echoed. (4) A write that leaves
more than `client_queue` KiB unsent closes it with 4008 "slow consumer" after what is buffered.
(5) Our close frame is followed by a half-close; the connection is aborted when the peer has not
closed its side within CLOSE_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import grpc
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp

from kurs_common.errors import QueryError
from kurs_gateway import ws_frames
from kurs_gateway.broadcast import SLOW_CONSUMER, Outgoing, View, slow_consumer_reason, write_bound
from kurs_gateway.routes import stream
from kurs_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

BACKLOG = 4096  # handshakes waiting to be accepted (the kernel caps it at somaxconn)
MAX_CLIENT_FRAME = 64 * 1024  # client messages are read and ignored; a larger frame: 1009
CLOSE_TIMEOUT = 5.0  # after our close frame, the peer's side must close within this
GOING_AWAY = 1001
# A transport write counts as this many outbox appends in the broadcaster's chunks: it yields to
# the loop every 256 writes (1-2 ms of sends). Every 64 (4) let HTTP in so often that 10,000
# clients' skew p99 grew to 238-269 ms; every 256: 173-203 ms, HTTP p99 < 10 ms (benchmarks (7)).
WRITE_COST = 1
HEAD, ADMIT, OPEN, CLOSING, CLOSED = range(5)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...


class TransportClient:
    """A native connection: frames are written straight into its transport (no task, no queue).

    Its transport's high-water mark is `bound` bytes (`write_bound(limit)`): when a write leaves
    more than that unsent, the transport calls its protocol's `pause_writing`, which calls
    `overflow()`; the client is then dropped and `closer` closes the connection with
    SLOW_CONSUMER (after what is already buffered). `closer(1000, "")` also ends it when the
    broadcaster stops.
    """

    __slots__ = ("bound", "closer", "dropped", "gone", "last_push", "transport", "view")
    cost, counted = WRITE_COST, 1

    def __init__(
        self, view: View, transport: Transport, closer: Callable[[int, str], None], bound: int
    ) -> None:
        self.view = view
        self.transport = transport
        self.closer = closer
        self.bound = bound
        self.last_push = time.monotonic()
        self.dropped = False
        self.gone = False

    def push(self, message: Outgoing, limit: int, now: float) -> bool:
        """Write the message's frame; True when this write overflowed the bound (dropped)."""
        if self.dropped or self.gone:
            return False
        self.transport.write(message.frame)  # may call overflow() before it returns
        self.last_push = now
        return self.dropped

    def overflow(self) -> None:
        """The write buffer passed the bound: drop the client, close once this write is over."""
        if self.dropped or self.gone:
            return
        self.dropped = True
        reason = slow_consumer_reason(f"{self.bound} bytes")
        asyncio.get_running_loop().call_soon(self.closer, SLOW_CONSUMER, reason)

    def release(self) -> None:
        self.gone = True

    def stop(self) -> None:
        if not self.gone:
            self.gone = True
            self.closer(1000, "")


class StreamListener:
    """The listening socket and its connections, in one gateway process (one event loop)."""

    def __init__(
        self,
        state: Any,
        settings: GatewaySettings,
        gate: ASGIApp | None,
        gauge: Any = None,
        messages: Any = None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.gate = gate  # the main port's guard chain; None when nothing may refuse a client
        self.gauge = gauge  # /metrics: WebSocket connections (inc/dec) and messages sent (inc)
        self.messages = messages
        self.bound = write_bound(settings.client_queue)
        self.connections: set[StreamConnection] = set()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._emptied = asyncio.Event()  # set when the last connection is gone

    async def start(self) -> None:
        port = self.settings.stream_port
        assert port is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: StreamConnection(self),
            self.settings.host,
            port,
            # Several workers of one gateway share the port; a single one owns it, so a second
            # gateway on the same port fails at start instead of silently taking half the clients.
            reuse_port=self.settings.workers > 1,
            backlog=BACKLOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.messages is not None:
            stream.broadcaster_of(self.state).on_written = self.messages.inc
        log.info("stream listener serving", extra={"port": self.port, "path": stream.PATH})

    def forget(self, connection: StreamConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._emptied.set()

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening, send every client 1001 and wait up to `grace` seconds for them."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self.connections):
            connection.close(GOING_AWAY, "the gateway is shutting down")
        if self.connections:
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), grace)
        for connection in list(self.connections):
            connection.abort()
        await self._server.wait_closed()
        self._server = None


class StreamConnection(asyncio.Protocol):
    """One connection to the stream port, from its request head to its close."""

    def __init__(self, listener: StreamListener) -> None:
        self.listener = listener
        self.transport: Any = None  # uvloop's transport is not an asyncio.Transport
        self.buffer = bytearray()
        self.phase = HEAD
        self.timer: asyncio.TimerHandle | None = None
        self.client: TransportClient | None = None
        self.task: asyncio.Task[None] | None = None
        self.fragmented = False
        self.counted = False

    # -- asyncio.Protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.listener.connections.add(self)
        seconds = self.listener.settings.header_read_timeout_seconds
        self.timer = asyncio.get_running_loop().call_later(seconds, self._head_timeout)

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase == OPEN:
            self.buffer += data
            self._frames()
        elif phase == HEAD:
            searched = max(0, len(self.buffer) - 3)
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n", searched)
            limit = self.listener.settings.max_header_bytes
            if end < 0 and len(self.buffer) <= limit:
                return
            if end < 0 or end + 4 > limit:
                self._refuse(431, ws_frames.problem(431, f"the request head is over {limit} bytes"))
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            self._cancel_timer()
            self._handshake(head)
        elif phase == ADMIT:  # frames sent before the answer: read once open, within bounds
            self.buffer += data
            if len(self.buffer) > MAX_CLIENT_FRAME + 14:
                self.abort()
        # CLOSING: the peer's close reply and anything after it are read and dropped

    def eof_received(self) -> bool:
        return False  # the peer closed its side: close ours (connection_lost follows)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.overflow()

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = CLOSED
        self._cancel_timer()
        self._leave()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.listener.forget(self)
        if self.counted and self.listener.gauge is not None:
            self.counted = False
            self.listener.gauge.dec()

    # -- the handshake

    def _head_timeout(self) -> None:
        if self.phase == HEAD:
            self.abort()  # slowloris: no answer, as on the main port

    def _handshake(self, head: bytes) -> None:
        try:
            request = ws_frames.parse_request(head)
            key = ws_frames.upgrade_key(request, stream.PATH)
        except ws_frames.HandshakeError as exc:
            self._refuse(exc.status, ws_frames.problem(exc.status, exc.detail), exc.headers)
            return
        self.phase = ADMIT
        query = QueryParams(request.query)
        if self.listener.gate is None:
            self._accept(key)
            if not self._start(query):
                self.task = asyncio.get_running_loop().create_task(self._join_later(query))
        else:
            self.task = asyncio.get_running_loop().create_task(self._admit(request, key, query))

    async def _admit(self, request: ws_frames.Request, key: str, query: QueryParams) -> None:
        gate = self.listener.gate
        assert gate is not None
        peer = self.transport.get_extra_info("peername") or ("unknown", 0)
        local = self.transport.get_extra_info("sockname") or ("unknown", 0)
        denied = await stream.through_guard(gate, request, (peer[0], peer[1]), (local[0], local[1]))
        if self.phase != ADMIT:
            return
        if denied is not None:
            self._refuse(*denied)
            return
        self._accept(key)
        if not self._start(query):
            await self._join_later(query)

    def _accept(self, key: str) -> None:
        self.transport.write(ws_frames.switching_protocols(key))
        self.transport.set_write_buffer_limits(high=self.listener.bound)
        self.phase = OPEN
        if self.listener.gauge is not None:
            self.counted = True
            self.listener.gauge.inc()
        if self.buffer:
            self._frames()

    def _refuse(self, status: int, body: bytes, headers: Any = ()) -> None:
        """Answer the handshake with an HTTP error, then half-close (what the client still
        sends is read and dropped, so the answer is not lost to a reset)."""
        self.phase = CLOSING
        self._cancel_timer()
        self.buffer.clear()
        self.transport.write(ws_frames.http_response(status, body, headers))
        self._half_close()

    # -- serving

    def _start(self, query: QueryParams) -> bool:
        """Join the view and write its first message; False when a publisher's view must first
        be read from the rates service (`_join_later`)."""
        if self.phase != OPEN:
            return True
        snapshot = self.listener.state.snapshot
        if not snapshot.ready or not snapshot.entries:
            self.close(stream.TRY_AGAIN_LATER, stream.NOT_READY)
            return True
        try:
            joined = stream.join_now(self.listener.state, query, self._new_client)
        except QueryError as exc:
            self._invalid(exc)
            return True
        if joined is None:
            return False
        self._joined(*joined)
        return True

    async def _join_later(self, query: QueryParams) -> None:
        try:
            joined = await stream.join(self.listener.state, query, self._new_client)
        except grpc.aio.AioRpcError:
            self.close(stream.TRY_AGAIN_LATER, stream.UPSTREAM_DOWN)
            return
        except QueryError as exc:
            self._invalid(exc)
            return
        self._joined(*joined)

    def _new_client(self, view: View) -> TransportClient:
        return TransportClient(view, self.transport, self.close, self.listener.bound)

    def _joined(self, client: TransportClient, missed: frozenset[str] | None) -> None:
        self.client = client
        if self.phase != OPEN:  # the peer left while its view was read upstream
            self._leave()
            return
        self.transport.write(client.view.opening(missed).frame)
        self._counted_message()

    def _invalid(self, exc: QueryError) -> None:
        self.transport.write(ws_frames.text_frame(stream.error_text(exc)))
        self._counted_message()
        self.close(stream.POLICY_VIOLATION, stream.invalid_reason(exc))

    def _counted_message(self) -> None:  # (the broadcaster counts its own: on_written)
        if self.listener.messages is not None:
            self.listener.messages.inc()

    def _frames(self) -> None:
        """Read the client's frames: answer pings, honour a close, ignore messages."""
        while self.phase == OPEN:
            try:
                frame = ws_frames.parse_frame(self.buffer, MAX_CLIENT_FRAME)
                if frame is None:
                    return
                fin, opcode, payload = frame
                if opcode == ws_frames.PING:
                    self.transport.write(ws_frames.frame(ws_frames.PONG, payload))
                elif opcode == ws_frames.CLOSE:
                    code, _ = ws_frames.parse_close(payload)
                    self._closed_by_peer(code)
                elif opcode == ws_frames.CONTINUATION:
                    if not self.fragmented:
                        raise ws_frames.ProtocolError(ws_frames.PROTOCOL_ERROR, "continuation of nothing")
                    self.fragmented = not fin
                elif opcode in (ws_frames.TEXT, ws_frames.BINARY):
                    if self.fragmented:
                        raise ws_frames.ProtocolError(ws_frames.PROTOCOL_ERROR, "a message inside a message")
                    self.fragmented = not fin
            except ws_frames.ProtocolError as exc:
                self.buffer.clear()
                self.close(exc.code, exc.reason)

    def _closed_by_peer(self, code: int) -> None:
        """The client closed: echo its code, then close the connection."""
        self.phase = CLOSING
        self._leave()
        payload = b"" if code == ws_frames.NO_STATUS else code.to_bytes(2, "big")
        self.transport.write(ws_frames.frame(ws_frames.CLOSE, payload))
        self.transport.close()

    def close(self, code: int, reason: str = "") -> None:
        """Close from our side: the close frame (after what is buffered), then a half-close;
        the peer's close reply is read and dropped, and it must close within CLOSE_TIMEOUT."""
        if self.phase in (CLOSING, CLOSED):
            return
        if self.phase != OPEN:
            self.abort()
            return
        self.phase = CLOSING
        self._leave()
        self.buffer.clear()
        self.transport.write(ws_frames.close_frame(code, reason))
        self._half_close()

    def _half_close(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, OSError):
            self.transport.write_eof()
        self._cancel_timer()
        self.timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _leave(self) -> None:
        if self.client is not None:  # leaving twice is harmless
            stream.broadcaster_of(self.listener.state).leave(self.client)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
