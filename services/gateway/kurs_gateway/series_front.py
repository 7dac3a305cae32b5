"""`GET /rates/timeseries` answered ahead of FastAPI routing when the request is plain.

An uncached one-year series is one gRPC call (GetTimeSeriesJson, whose days arrive as prebuilt
JSON) and a few byte joins; FastAPI's routing, dependency solving, parameter validation and
response wrapping cost more than that on this path. This front parses the query string itself,
and only when every parameter is one the route knows, given once (symbols may repeat) and in
the plain form (`2024-01-31`, `USD`, `USD,JPY`, `boe`: stricter than the route's patterns) does
it answer; anything else, and any gRPC error, goes to the FastAPI route unchanged, which
answers exactly as before (problems, UNIMPLEMENTED fallback). The body is
`series_body.timeseries_bytes`, the same bytes as the route's, stored in the body cache the same
way. It sits inside the keys/limits front and the fast path, like the stream front: access
control, metrics and cached answers are the same as for the route.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import grpc
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import validation
from kurs_common.errors import QueryError
from kurs_gateway import series_body
from kurs_gateway.fastpath import JSON_HEADERS, BodyCache
from kurs_gateway.settings import GatewaySettings

PATH = "/rates/timeseries"
ALLOWED = frozenset({"start_date", "end_date", "base", "symbols", "source"})
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CODE = re.compile(r"[A-Za-z]{3,4}")
_CODES = re.compile(r"[A-Za-z]{3,4}(?:,[A-Za-z]{3,4})*")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


def plain_request(query_string: bytes) -> rates_pb2.GetTimeSeriesJsonRequest | None:
    """The request of a plain query string, else None (the FastAPI route decides)."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None
    single: dict[str, str] = {}
    symbols: list[str] = []
    for key, value in pairs:
        if key == "symbols":
            if not _CODES.fullmatch(value):
                return None
            symbols.append(value)
        elif key not in ALLOWED or key in single:
            return None
        else:
            single[key] = value
    start, end = single.get("start_date"), single.get("end_date")
    base, source = single.get("base", "USD"), single.get("source")
    if start is None or end is None or not _DATE.fullmatch(start) or not _DATE.fullmatch(end):
        return None
    if not _CODE.fullmatch(base) or (source is not None and not _SOURCE.fullmatch(source)):
        return None
    try:
        validation.date_range("start_date", start, "end_date", end)
        code = validation.currency("base", base)
        wanted = validation.symbols("symbols", symbols) or []
    except QueryError:
        return None
    return rates_pb2.GetTimeSeriesJsonRequest(
        start_date=start, end_date=end, base=code, symbols=wanted, source=(source or "").lower()
    )


class SeriesFront:
    def __init__(self, app: FastAPI, cache: BodyCache) -> None:
        self.app = app
        self.state = app.state  # the rates stub and settings, set by the app's lifespan
        self.cache = cache
        self.answered = 0  # for tests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == PATH:
            request = plain_request(scope["query_string"])
            stub: rates_pb2_grpc.RatesServiceStub | None = getattr(self.state, "rates_stub", None)
            if request is not None and stub is not None:
                settings: GatewaySettings = self.state.settings
                try:
                    reply = await stub.GetTimeSeriesJson(request, timeout=settings.upstream_timeout_seconds)
                except grpc.aio.AioRpcError:
                    pass  # the route answers it (its problem, or the fallback to GetTimeSeries)
                else:
                    body = series_body.timeseries_bytes(reply)
                    self.cache.store(scope["path"], scope["query_string"], body)
                    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    self.answered += 1
                    return
        await self.app(scope, receive, send)
