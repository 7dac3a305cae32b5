"""RFC 9457 problem details (application/problem+json) for every error the gateway returns."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from kurs_common.errors import QueryError, Unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Invalid request parameter",
    404: "Not found",
    405: "Method not allowed",
    422: "Invalid request parameter",
    429: "Too many requests",
    500: "Internal error",
    502: "Upstream error",
    503: "Service unavailable",
    504: "Upstream timeout",
}


def problem(status: int, detail: str, *, param: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if param is not None:
        body["invalid_params"] = [{"name": param, "reason": detail}]
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON)


def from_grpc(exc: grpc.aio.AioRpcError) -> Response:
    code = exc.code()
    details = exc.details() or code.name
    field, sep, reason = details.partition(": ")
    param = field if sep and field.isidentifier() else None
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return problem(400, reason if param else details, param=param)
    if code == grpc.StatusCode.NOT_FOUND:
        return problem(404, reason if param else details, param=param)
    if code == grpc.StatusCode.UNAVAILABLE:
        return problem(503, f"rates service unavailable: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return problem(504, "rates service did not answer in time")
    log.error("unexpected upstream status", extra={"code": code.name, "details": details})
    return problem(502, f"rates service error: {code.name}")


def install(app: FastAPI) -> None:
    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> Response:
        return problem(exc.status_code, exc.reason, param=exc.field)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def _grpc_error(request: Request, exc: grpc.aio.AioRpcError) -> Response:
        return from_grpc(exc)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> Response:
        return problem(503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("request",), "msg": "invalid request"}
        name = str(first["loc"][-1])
        params = [{"name": str(e["loc"][-1]), "reason": e["msg"]} for e in errors]
        return problem(400, f"{name}: {first['msg']}", invalid_params=params)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "internal error; it has been logged")
