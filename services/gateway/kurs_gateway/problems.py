"""RFC 9457 problem details (application/problem+json) for every error the gateway returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from kurs_common.errors import QueryError, Unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Invalid request parameter",
    404: "Not found",
    405: "Method not allowed",
    413: "Content too large",
    422: "Invalid request parameter",
    429: "Too many requests",
    500: "Internal error",
    502: "Upstream error",
    503: "Service unavailable",
    504: "Upstream timeout",
}


def problem(
    status: int,
    detail: str,
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if param is not None:
        body["invalid_params"] = [{"name": param, "reason": detail}]
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "invalid_params": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}

_DOCUMENTED = {
    "400": "Invalid parameter (named in invalid_params)",
    "401": "An API key is required (when keys are on) or the key is not valid",
    "403": "The key is valid but lacks the scope this route needs",
    "429": "Rate limit or quota reached (Retry-After says when to try again)",
    "404": "No rates for what was asked (e.g. a date before the first observation)",
    "503": "A store or upstream service is unavailable",
    "504": "An upstream service did not answer in time",
}


# Route tags whose errors are another API's JSON shape rather than RFC 9457 problems.
FOREIGN_ERROR_TAGS = frozenset({"exchangerate-api"})


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's generic 422 with the problem responses the API really returns."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem_ref = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    # Compatibility routes answer errors in the shape of the API they stand in for (ExchangeRate-API:
    # `{"result": "error", "error-type": ...}` as application/json), not as problem details.
    foreign = {"application/json": {"schema": {"type": "object"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            content = foreign if FOREIGN_ERROR_TAGS & set(operation.get("tags", ())) else problem_ref
            for code, description in _DOCUMENTED.items():
                responses.setdefault(code, {"description": description, "content": content})
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    return schema


_DATE_HINT = "must be a date in YYYY-MM-DD form"
_CODE_HINT = "must be a three-letter ISO 4217 currency code"
_HINTS = {
    "date": _DATE_HINT,
    "start_date": _DATE_HINT,
    "end_date": _DATE_HINT,
    "base": _CODE_HINT,
    "from": _CODE_HINT,
    "to": _CODE_HINT,
    "symbols": "must be three-letter ISO 4217 codes separated by commas",
    "amount": "must be a plain decimal number such as 100 or 12.50",
}


def _explain(error: Mapping[str, Any]) -> dict[str, str]:
    """Turn one pydantic error into {name, reason} in the words of this API."""
    loc = [part for part in error.get("loc", ()) if isinstance(part, str)] or ["request"]
    # ("query", "symbols", 0) names the parameter "symbols"; body errors name their last field.
    name = loc[1] if len(loc) > 1 and loc[0] in ("query", "path", "header") else loc[-1]
    if error.get("type") == "missing":
        return {"name": name, "reason": "is required"}
    hint = _HINTS.get(name, str(error.get("msg", "is invalid")))
    return {"name": name, "reason": f"{error.get('input')!r} {hint}" if "input" in error else hint}


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
        params = [_explain(error) for error in exc.errors()] or [
            {"name": "request", "reason": "invalid request"}
        ]
        return problem(400, f"{params[0]['name']}: {params[0]['reason']}", invalid_params=params)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path served by
            # several routes (GET and POST declared apart) allows all of their methods.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request.scope))}
        return problem(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "internal error; it has been logged")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of `app` serves at the request's path, sorted."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(scope["path"]):
            methods |= route.methods
    return sorted(methods)
