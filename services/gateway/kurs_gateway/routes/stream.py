"""WS /ws/rates/stream: a snapshot, then an update on every change, heartbeats when idle.

Messages (JSON text frames):
  {"type": "snapshot", "sequence": N, "base": "USD", "date": "...", "rates": {...}}
  {"type": "update",   "sequence": N, "base": "USD", "date": "...", "rates": {changed only}}
  {"type": "heartbeat", "sequence": N}
  {"type": "error", "status": 400, "detail": "...", "invalid_params": [...]}, then close 1008.
`since=N` resumes: if N is within the recent window the first message is an update with
everything that changed after N, otherwise a snapshot.
`source=<publisher>` streams that publisher's own figures as published (its newest publication,
from the rates service) instead of the blended series: the view is read again whenever the rates
stream reports a change (a publication reaches the blend at the same time), and only what
changed is sent.

Two doors serve it, with one broadcaster per process behind both: this route on the main port
(through the ASGI server, `StreamFront`), and the native stream listener on its own port
(stream_listener.py). Both read the parameters, join the views and word their errors with the
functions here (`join`, `join_now`, `error_text`), and both are admitted by the same key guard:
the listener passes its handshakes through the main port's guard to `StreamFront`, which marks
them admitted (`NATIVE_ADMIT`) instead of serving them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketState

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import validation
from kurs_common.errors import InvalidArgument, NotFound, QueryError
from kurs_gateway import ws_frames
from kurs_gateway.broadcast import (
    SLOW_CONSUMER,
    Broadcaster,
    Client,
    Subscriber,
    View,
    ViewKey,
    slow_consumer_reason,
)
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])

PATH = "/ws/rates/stream"
ALLOWED = {"base", "symbols", "since", "api_key", "source"}
POLICY_VIOLATION = 1008
SEQUENCE = re.compile(r"^[0-9]{1,19}$")  # ASCII digits only (str.isdigit accepts "²")
TRY_AGAIN_LATER = 1013
NOT_READY = "rates are not available yet; retry shortly"
UPSTREAM_DOWN = "the rates service is unavailable; retry shortly"
NATIVE_ADMIT = "kurs.native_admit"  # scope key: a native handshake to be marked admitted, not served

C = TypeVar("C", bound=Subscriber)
Joined = tuple[C, frozenset[str] | None]  # the client, and what it missed since its since= (None: snapshot)


def _params(query: QueryParams, served: set[str] | None) -> tuple[str, list[str] | None, int | None]:
    """base, symbols and since; codes checked against `served` (None: their shape only)."""
    for key in query:
        if key not in ALLOWED:
            raise InvalidArgument(key, f"unknown parameter; allowed: {', '.join(sorted(ALLOWED))}")
    base = validation.currency("base", query.get("base", "USD"), served)
    symbols = validation.symbols("symbols", query.getlist("symbols"), served)
    since_text = query.get("since")
    since = None
    if since_text is not None:
        if not SEQUENCE.match(since_text):
            raise InvalidArgument("since", "must be a non-negative integer sequence number")
        since = int(since_text)
    return base, symbols, since


class PublisherView:
    """A publisher's newest figures against a base, read from the rates service (`source=`)."""

    def __init__(self, stub: rates_pb2_grpc.RatesServiceStub, source: str, timeout: float) -> None:
        self.stub = stub
        self.source = source
        self.timeout = timeout
        self.day = ""

    async def values(self, base: str, symbols: list[str] | None) -> dict[str, str]:
        try:
            reply = await self.stub.GetLatestRates(
                rates_pb2.GetLatestRatesRequest(base=base, symbols=symbols or [], source=self.source),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            field, _, reason = (exc.details() or "").partition(": ")
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(field or "source", reason or "invalid") from exc
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(field or "source", reason or "not found") from exc
            raise
        self.day = reply.date
        return {r.currency: r.value for r in reply.rates}

    async def fetch(self, base: str, symbols: list[str] | None) -> tuple[dict[str, str], str]:
        """The broadcaster's reader: the figures and their date."""
        values = await self.values(base, symbols)
        return values, self.day


def _source_param(query: QueryParams) -> str | None:
    text = query.get("source")
    if text is None:
        return None
    source = text.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", source):
        raise InvalidArgument("source", "must be a publisher id such as ecb (see /sources)")
    return source


def broadcaster_of(state: Any) -> Broadcaster:
    """This app's broadcaster (both doors), made on first use (nothing is created at import)."""
    found = getattr(state, "ws_broadcaster", None)
    if not isinstance(found, Broadcaster):
        s: GatewaySettings = state.settings
        found = state.ws_broadcaster = Broadcaster(
            state.snapshot, s.heartbeat_seconds, s.client_queue, s.switch_interval_seconds
        )
    return found


def error_text(exc: QueryError) -> str:
    """The error message a WebSocket with a bad parameter receives before its 1008 close."""
    error = {
        "type": "error",
        "status": 400,
        "detail": exc.reason,
        "invalid_params": [{"name": exc.field, "reason": exc.reason}],
    }
    return orjson.dumps(error).decode()


def invalid_reason(exc: QueryError) -> str:
    return f"invalid parameter: {exc.field}"[:120]


def join_now(state: Any, query: QueryParams, make: Callable[[View], C]) -> Joined[C] | None:
    """Join the view `query` asks for, if that needs no upstream read (None: it does, `join`).
    Raises QueryError for a bad parameter. `make` builds the client for the view; it is
    attached with no await in between, so its first message and every later one agree."""
    snapshot: LiveSnapshot = state.snapshot
    broadcaster = broadcaster_of(state)
    source = _source_param(query)
    base, symbols, since = _params(query, {*snapshot.entries, PIVOT} if source is None else None)
    if source is None:
        client = broadcaster.attach(make(broadcaster.blend_view(base, symbols)))
        return client, snapshot.changed_since(since) if since is not None else None
    view = broadcaster.views.get((base, tuple(symbols) if symbols is not None else None, source))
    return None if view is None else (broadcaster.attach(make(view)), None)  # a publisher's: whole


async def join(state: Any, query: QueryParams, make: Callable[[View], C]) -> Joined[C]:
    """`join_now`, or read a publisher's view from the rates service first (which validates
    source, base and symbols upstream). Raises QueryError, or AioRpcError when it is down."""
    joined = join_now(state, query, make)
    if joined is not None:
        return joined
    settings: GatewaySettings = state.settings
    source = _source_param(query)
    assert source is not None
    base, symbols, _ = _params(query, None)
    key: ViewKey = (base, tuple(symbols) if symbols is not None else None, source)
    reader = PublisherView(state.rates_stub, source, settings.upstream_timeout_seconds)
    first = await reader.values(base, symbols)
    view = broadcaster_of(state).publisher_view(key, first, reader.day, reader.fetch)
    return broadcaster_of(state).attach(make(view)), None


async def through_guard(
    gate: ASGIApp, request: ws_frames.Request, client: tuple[str, int], server: tuple[str, int]
) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
    """Pass a native listener's handshake, as an ASGI WebSocket scope, through the main port's
    guard chain (`gate`) down to `StreamFront`, which marks it admitted: None when it was, else
    the refusal the guard sent (status, body, headers)."""
    marker = {"admitted": False}
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": request.path,
        "raw_path": request.path.encode("latin-1"),
        "query_string": request.query,
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
        "client": client,
        "server": server,
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},  # a refusal comes as an HTTP answer
        "state": {},
        NATIVE_ADMIT: marker,
    }
    answer: dict[str, Any] = {"status": 403, "headers": [], "body": b""}

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        if message["type"] == "websocket.http.response.start":
            answer["status"], answer["headers"] = message["status"], list(message.get("headers", []))
        elif message["type"] == "websocket.http.response.body":
            answer["body"] += message.get("body", b"")

    try:
        await gate(scope, receive, send)
    except Exception:
        log.exception("stream handshake: the guard failed")
        return 500, ws_frames.problem(500, "the request could not be checked"), []
    if marker["admitted"]:
        return None
    return (
        answer["status"],
        answer["body"] or ws_frames.problem(answer["status"], "refused"),
        answer["headers"],
    )


class StreamFront:
    """Serves WS /ws/rates/stream straight from the ASGI scope, ahead of FastAPI's routing,
    dependency injection and per-request middleware (a handshake and every message cost
    less); everything else goes to `app`. Placed inside the key guard and the metrics layer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == PATH:
            admit = scope.get(NATIVE_ADMIT)
            if admit is not None:  # a native listener's handshake that the guard let through
                admit["admitted"] = True
                return
            await serve_stream(WebSocket(scope, receive, send), self.state)
        else:
            await self.app(scope, receive, send)


@router.websocket(PATH)
async def stream(ws: WebSocket) -> None:
    await serve_stream(ws, ws.app.state)


async def serve_stream(ws: WebSocket, state: Any) -> None:
    snapshot: LiveSnapshot = state.snapshot
    await ws.accept()
    if not snapshot.ready or not snapshot.entries:
        await ws.close(TRY_AGAIN_LATER, NOT_READY)
        return
    try:
        client, missed = await join(state, ws.query_params, Client)
    except grpc.aio.AioRpcError:
        await ws.close(TRY_AGAIN_LATER, UPSTREAM_DOWN)
        return
    except QueryError as exc:
        await ws.send_text(error_text(exc))
        await ws.close(POLICY_VIOLATION, invalid_reason(exc))
        return
    await _serve(ws, broadcaster_of(state), client, missed)


async def _serve(
    ws: WebSocket, broadcaster: Broadcaster, client: Client, missed: frozenset[str] | None
) -> None:
    """Write the first message, then whatever the broadcaster queues for this client."""
    client.task = asyncio.current_task()
    receiver = asyncio.create_task(_drain_client(ws, client))
    try:
        await ws.send_text(client.view.opening(missed).text)
        while (text := await client.next()) is not None:
            await ws.send_text(text)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not client.dropped or task is None:
            raise
        task.uncancel()  # cancelled by the broadcaster: a send blocked on a slow reader
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        client.task = None
        broadcaster.leave(client)
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver
    if ws.client_state == WebSocketState.CONNECTED:
        reason = slow_consumer_reason(f"{broadcaster.limit} messages")
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                if client.dropped:
                    await ws.close(SLOW_CONSUMER, reason)
                else:
                    await ws.close()


async def _drain_client(ws: WebSocket, client: Client) -> None:
    """Read (and ignore) client frames, text or binary, so a close is noticed promptly."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    client.gone = True
    client.wake()
