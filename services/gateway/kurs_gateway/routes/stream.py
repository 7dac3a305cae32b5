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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import grpc
import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketState

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import validation
from kurs_common.errors import InvalidArgument, NotFound, QueryError
from kurs_gateway.broadcast import SLOW_CONSUMER, Broadcaster, Client, ViewKey
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])

PATH = "/ws/rates/stream"
ALLOWED = {"base", "symbols", "since", "api_key", "source"}
POLICY_VIOLATION = 1008
SEQUENCE = re.compile(r"^[0-9]{1,19}$")  # ASCII digits only (str.isdigit accepts "²")
TRY_AGAIN_LATER = 1013


def _params(ws: WebSocket, served: set[str] | None) -> tuple[str, list[str] | None, int | None]:
    """base, symbols and since; codes checked against `served` (None: their shape only)."""
    query = ws.query_params
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


def _source_param(ws: WebSocket) -> str | None:
    text = ws.query_params.get("source")
    if text is None:
        return None
    source = text.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", source):
        raise InvalidArgument("source", "must be a publisher id such as ecb (see /sources)")
    return source


def _broadcaster(state: Any, snapshot: LiveSnapshot, settings: GatewaySettings) -> Broadcaster:
    """This app's broadcaster, made on the first connection (nothing is created at import)."""
    found = getattr(state, "ws_broadcaster", None)
    if not isinstance(found, Broadcaster):
        found = state.ws_broadcaster = Broadcaster(
            snapshot, settings.heartbeat_seconds, settings.client_queue
        )
    return found


async def _close_invalid(ws: WebSocket, exc: QueryError) -> None:
    error = {
        "type": "error",
        "status": 400,
        "detail": exc.reason,
        "invalid_params": [{"name": exc.field, "reason": exc.reason}],
    }
    await ws.send_text(orjson.dumps(error).decode())
    await ws.close(POLICY_VIOLATION, f"invalid parameter: {exc.field}"[:120])


class StreamFront:
    """Serves WS /ws/rates/stream straight from the ASGI scope, ahead of FastAPI's routing,
    dependency injection and per-request middleware (a handshake and every message cost
    less); everything else goes to `app`. Placed inside the key guard and the metrics layer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == PATH:
            await serve_stream(WebSocket(scope, receive, send), self.state)
        else:
            await self.app(scope, receive, send)


@router.websocket(PATH)
async def stream(ws: WebSocket) -> None:
    await serve_stream(ws, ws.app.state)


async def serve_stream(ws: WebSocket, state: Any) -> None:
    snapshot: LiveSnapshot = state.snapshot
    settings: GatewaySettings = state.settings
    await ws.accept()
    if not snapshot.ready or not snapshot.entries:
        await ws.close(TRY_AGAIN_LATER, "rates are not available yet; retry shortly")
        return
    broadcaster = _broadcaster(state, snapshot, settings)
    try:
        source = _source_param(ws)
        base, symbols, since = _params(ws, {*snapshot.entries, PIVOT} if source is None else None)
        if source is None:
            client = broadcaster.join_blend(base, symbols)
        else:
            since = None  # a publisher's view is always sent whole first
            key: ViewKey = (base, tuple(symbols) if symbols is not None else None, source)
            joined = broadcaster.join_existing(key)
            if joined is None:
                reader = PublisherView(state.rates_stub, source, settings.upstream_timeout_seconds)
                first = await reader.values(base, symbols)  # validates source, base and symbols upstream
                joined = broadcaster.join_publisher(key, first, reader.day, reader.fetch)
            client = joined
    except grpc.aio.AioRpcError:
        await ws.close(TRY_AGAIN_LATER, "the rates service is unavailable; retry shortly")
        return
    except QueryError as exc:
        await _close_invalid(ws, exc)
        return
    await _serve(ws, broadcaster, client, snapshot.changed_since(since) if since is not None else None)


async def _serve(
    ws: WebSocket, broadcaster: Broadcaster, client: Client, missed: frozenset[str] | None
) -> None:
    """Write the first message, then whatever the broadcaster queues for this client."""
    client.task = asyncio.current_task()
    receiver = asyncio.create_task(_drain_client(ws, client))
    view = client.view
    try:
        if missed is None:
            first = view.snapshot_text()
        else:
            base = view.base
            first = view.message(
                "update", {k: v for k, v in view.sent.items() if k in missed or base in missed}
            )
        await ws.send_text(first)
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
        reason = f"slow consumer: more than {broadcaster.limit} messages unsent; reconnect with since="
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                if client.dropped:
                    await ws.close(SLOW_CONSUMER, reason[:120])
                else:
                    await ws.close()


async def _drain_client(ws: WebSocket, client: Client) -> None:
    """Read (and ignore) client frames, text or binary, so a close is noticed promptly."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    client.gone = True
    client.wake()
