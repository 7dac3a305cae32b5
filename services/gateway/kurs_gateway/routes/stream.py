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
import time
from typing import Annotated, Any

import grpc
import orjson
from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import validation
from kurs_common.errors import InvalidArgument, NotFound, QueryError
from kurs_common.quotes import rebase_entries
from kurs_gateway import deps
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])

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


def _source_param(ws: WebSocket) -> str | None:
    text = ws.query_params.get("source")
    if text is None:
        return None
    source = text.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", source):
        raise InvalidArgument("source", "must be a publisher id such as ecb (see /sources)")
    return source


def _values(snapshot: LiveSnapshot, base: str, symbols: list[str] | None) -> dict[str, str]:
    if base != PIVOT and base not in snapshot.entries:
        return {}
    return {r.currency: r.value for r in rebase_entries(snapshot.entries, PIVOT, base, symbols)}


@router.websocket("/ws/rates/stream")
async def stream(
    ws: WebSocket,
    snapshot: Annotated[LiveSnapshot, Depends(deps.snapshot)],
    settings: Annotated[GatewaySettings, Depends(deps.settings)],
) -> None:
    await ws.accept()
    if not snapshot.ready or not snapshot.entries:
        await ws.close(TRY_AGAIN_LATER, "rates are not available yet; retry shortly")
        return
    view: PublisherView | None = None
    try:
        source = _source_param(ws)
        base, symbols, since = _params(ws, {*snapshot.entries, PIVOT} if source is None else None)
        if source is not None:
            since = None  # a publisher's view is always sent whole first
            view = PublisherView(ws.app.state.rates_stub, source, settings.upstream_timeout_seconds)
            first = await view.values(base, symbols)  # validates source, base and symbols upstream
    except grpc.aio.AioRpcError:
        await ws.close(TRY_AGAIN_LATER, "the rates service is unavailable; retry shortly")
        return
    except QueryError as exc:
        error = {
            "type": "error",
            "status": 400,
            "detail": exc.reason,
            "invalid_params": [{"name": exc.field, "reason": exc.reason}],
        }
        await ws.send_text(orjson.dumps(error).decode())
        await ws.close(POLICY_VIOLATION, f"invalid parameter: {exc.field}"[:120])
        return

    last_sent = time.monotonic()

    async def send(kind: str, rates: dict[str, str] | None = None) -> None:
        nonlocal last_sent
        message: dict[str, Any] = {"type": kind, "sequence": snapshot.sequence}
        if rates is not None:
            message.update(base=base, date=view.day if view else snapshot.day, rates=rates)
            if view is not None:
                message["source"] = view.source
        await ws.send_text(orjson.dumps(message).decode())
        last_sent = time.monotonic()

    receiver = asyncio.create_task(_drain_client(ws))
    try:
        with snapshot.listen() as listener:
            current = first if view is not None else _values(snapshot, base, symbols)
            missed = snapshot.changed_since(since) if since is not None else None
            if missed is None:
                await send("snapshot", current)
            else:
                await send("update", {k: v for k, v in current.items() if k in missed or base in missed})
            sent = current
            while not receiver.done():
                # Wake on a change, on the client going away, or when a heartbeat is due: a client
                # gets a heartbeat after `heartbeat_seconds` without a message, however busy other
                # currencies are.
                wait = max(0.0, last_sent + settings.heartbeat_seconds - time.monotonic())
                change = asyncio.ensure_future(listener.queue.get())
                done, _ = await asyncio.wait(
                    {change, receiver}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if change not in done:
                    change.cancel()
                    if receiver in done:
                        break
                    await send("heartbeat")
                    continue
                resync = change.result().resync
                while not listener.queue.empty():
                    resync = listener.queue.get_nowait().resync or resync
                if view is None:
                    current = _values(snapshot, base, symbols)
                else:
                    try:
                        current = await view.values(base, symbols)
                    except (grpc.aio.AioRpcError, QueryError):
                        continue  # read again on the next change; the client keeps what it has
                if listener.overflowed or resync or sent.keys() - current.keys():
                    # Fell behind, or the upstream view was replaced (a currency may be gone): an
                    # update cannot say "removed", so the client gets its whole view again.
                    listener.overflowed = False
                    await send("snapshot", current)
                else:
                    fresh = {k: v for k, v in current.items() if sent.get(k) != v}
                    if fresh:
                        await send("update", fresh)
                sent = current
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver
        if ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):
                await ws.close()


async def _drain_client(ws: WebSocket) -> None:
    """Read (and ignore) client frames, text or binary, so a close is noticed promptly."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
