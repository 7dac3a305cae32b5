"""POST/GET /graphql: the same rates as the REST API, queried with GraphQL (graphql-core).

Rates are `String`s holding exact decimals, as everywhere in Kurs. Bad arguments come back as
GraphQL errors with `extensions: {code: "BAD_USER_INPUT" | "NOT_FOUND" | "UNAVAILABLE",
field: <argument>}`; a request that is not GraphQL at all (no query, bad JSON, a syntax or
validation error) is a 400 problem, per the GraphQL-over-HTTP convention.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import grpc
import orjson
from fastapi import APIRouter, Depends, Request
from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    graphql,
    parse,
    validate,
)
from starlette.responses import Response

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, NotFound, QueryError
from kurs_gateway import deps, views
from kurs_gateway.guard import PRINCIPAL
from kurs_gateway.problems import problem
from kurs_gateway.routes import graphql_cost
from kurs_gateway.routes.graphql_analysis import AnalysisFields
from kurs_gateway.routes.graphql_doc import OPENAPI_PATH
from kurs_gateway.routes.graphql_schema import build
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot

router = APIRouter(tags=["graphql"])
__all__ = ["OPENAPI_PATH", "Root", "build", "router"]

MAX_QUERY_BYTES = 16_384
MAX_BODY_BYTES = 64 * 1024  # query + variables
SOURCE = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9_-]{0,31}\s*$")  # as the REST `source` parameter


def source_of(source: str | None) -> str:
    """The publisher id a `source` argument names ("" for the blended series)."""
    if source is None:
        return ""
    if not SOURCE.match(source):
        raise InvalidArgument("source", "a publisher id such as ecb (see /sources)")
    return source.strip().lower()


def _rates(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"currency": code, "value": value} for code, value in values.items()]


def _user_error(exc: QueryError) -> GraphQLError:
    code = "NOT_FOUND" if isinstance(exc, NotFound) else "BAD_USER_INPUT"
    return GraphQLError(f"{exc.field}: {exc.reason}", extensions={"code": code, "field": exc.field})


def _grpc_error(exc: grpc.aio.AioRpcError) -> GraphQLError:
    details = exc.details() or exc.code().name
    field, sep, _ = details.partition(": ")
    codes = {
        grpc.StatusCode.INVALID_ARGUMENT: "BAD_USER_INPUT",
        grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
        grpc.StatusCode.DEADLINE_EXCEEDED: "UNAVAILABLE",
    }
    extensions: dict[str, Any] = {"code": codes.get(exc.code(), "UNAVAILABLE")}
    if sep and field.isidentifier():
        extensions["field"] = field
    return GraphQLError(details, extensions=extensions)


class Root(AnalysisFields):
    """Root resolvers; graphql-core calls `root.<field>(info, **arguments)`."""

    def __init__(
        self,
        snapshot: LiveSnapshot,
        stub: rates_pb2_grpc.RatesServiceStub,
        timeout: float,
        scopes: frozenset[str] | None = None,  # the calling key's; None: keys are off
    ) -> None:
        self.snapshot = snapshot
        self.stub = stub
        self.timeout = timeout
        self.scopes = scopes

    async def _guard(self, call: Any) -> Any:
        try:
            return await call
        except QueryError as exc:
            raise _user_error(exc) from exc
        except grpc.aio.AioRpcError as exc:
            raise _grpc_error(exc) from exc

    async def latest(
        self, info: Any, base: str, symbols: list[str] | None = None, source: str | None = None
    ) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            publisher = source_of(source)
            if publisher:
                reply = await self.stub.GetLatestRates(
                    rates_pb2.GetLatestRatesRequest(
                        base=views.require_currency_shape("base", base),
                        symbols=views.require_symbols_shape(symbols or []),
                        source=publisher,
                    ),
                    timeout=self.timeout,
                )
                body = views.reply_body(reply.base, reply.date, reply.rates)
                return {**body, "rates": _rates(body["rates"])}
            code, _, rates = views.latest_rates(self.snapshot.entries, base, symbols or [])
            return {
                "base": code,
                "date": max((r.day for r in rates), default=self.snapshot.day),
                "rates": _rates({r.currency: r.value for r in rates}),
                "sources": sorted({s for r in rates for s in r.sources}),
            }

        result: dict[str, Any] = await self._guard(run())
        return result

    async def historical(
        self,
        info: Any,
        date: str,
        base: str,
        symbols: list[str] | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            validation.date("date", date)
            reply = await self.stub.GetHistoricalRates(
                rates_pb2.GetHistoricalRatesRequest(
                    date=date,
                    base=views.require_currency_shape("base", base),
                    symbols=views.require_symbols_shape(symbols or []),
                    source=source_of(source),
                ),
                timeout=self.timeout,
            )
            body = views.historical_body(reply)
            return {
                "base": body["base"],
                "date": body["date"],
                "requestedDate": body["requested_date"],
                "rates": _rates(body["rates"]),
                "sources": body["sources"],
            }

        result: dict[str, Any] = await self._guard(run())
        return result

    async def timeseries(
        self,
        info: Any,
        startDate: str,
        endDate: str,
        base: str,
        symbols: list[str] | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        if self.scopes is not None and "bulk" not in self.scopes:
            raise GraphQLError(
                "timeseries needs a key with the 'bulk' scope",
                extensions={"code": "FORBIDDEN", "field": "timeseries"},
            )

        async def run() -> dict[str, Any]:
            validation.date_range("startDate", startDate, "endDate", endDate)
            reply = await self.stub.GetTimeSeries(
                rates_pb2.GetTimeSeriesRequest(
                    start_date=startDate,
                    end_date=endDate,
                    base=views.require_currency_shape("base", base),
                    symbols=views.require_symbols_shape(symbols or []),
                    source=source_of(source),
                ),
                timeout=self.timeout,
            )
            return {
                "base": reply.base,
                "startDate": reply.start_date,
                "endDate": reply.end_date,
                "days": [
                    {"date": d.date, "rates": _rates(dict(sorted(d.rates.items())))} for d in reply.days
                ],
                "sources": list(reply.sources),
            }

        result: dict[str, Any] = await self._guard(run())
        return result

    async def convert(
        self,
        info: Any,
        to: str,
        amount: str,
        date: str | None = None,
        source: str | None = None,
        **kwargs: str,
    ) -> dict[str, Any]:
        origin = kwargs["from"]

        async def run() -> dict[str, Any]:
            views.require_currency_shape("from", origin)
            views.require_currency_shape("to", to)
            try:
                money.parse_amount(amount)
            except money.DecimalFormatError as exc:
                raise InvalidArgument("amount", str(exc)) from exc
            if date is not None:
                validation.date("date", date)
            reply = await self.stub.Convert(
                rates_pb2.ConvertRequest(
                    from_currency=origin,
                    to_currency=to,
                    amount=amount.strip(),
                    date=date or "",
                    source=source_of(source),
                ),
                timeout=self.timeout,
            )
            return views.convert_body(reply)

        result: dict[str, Any] = await self._guard(run())
        return result

    async def currencies(self, info: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            reply = await self.stub.ListCurrencies(rates_pb2.ListCurrenciesRequest(), timeout=self.timeout)
            return [
                {
                    "code": c.code,
                    "name": c.name,
                    "firstDate": c.first_date,
                    "lastDate": c.last_date,
                    "active": c.active,
                }
                for c in reply.currencies
            ]

        result: list[dict[str, Any]] = await self._guard(run())
        return result


async def _execute(request: Request, document: Any, settings: GatewaySettings) -> Response:
    if not isinstance(document, dict):
        return problem(400, "the body must be a JSON object with a 'query'", param="query")
    query = document.get("query")
    variables = document.get("variables")
    operation = document.get("operationName")
    if not isinstance(query, str) or not query.strip():
        return problem(400, "a GraphQL 'query' string is required", param="query")
    if len(query.encode()) > MAX_QUERY_BYTES:
        return problem(400, f"the query may be at most {MAX_QUERY_BYTES} bytes", param="query")
    if variables is not None and not isinstance(variables, dict):
        return problem(400, "'variables' must be a JSON object", param="variables")
    if operation is not None and not isinstance(operation, str):
        return problem(400, "'operationName' must be a string", param="operationName")
    schema = deps.graphql_schema(request)
    try:
        ast = parse(query)
    except GraphQLError as exc:
        return problem(400, f"syntax error: {exc.message}", param="query")
    errors = validate(schema, ast)
    if errors:
        return problem(400, "; ".join(e.message for e in errors), param="query")
    if any(
        isinstance(d, OperationDefinitionNode) and d.operation is OperationType.SUBSCRIPTION
        for d in ast.definitions
    ):
        return problem(400, "subscriptions are served over WebSocket (graphql-transport-ws)", param="query")
    if (refused := await graphql_cost.admit(request, ast, operation, variables)) is not None:
        return refused  # over a cost, alias or depth limit, or the key cannot pay for its cost
    principal = request.scope.get("state", {}).get(PRINCIPAL)
    scopes = getattr(principal, "scopes", None)
    root = Root(deps.snapshot(request), deps.rates_stub(request), settings.upstream_timeout_seconds, scopes)
    result = await graphql(
        schema, query, root_value=root, variable_values=variables, operation_name=operation
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    # Root fields are nullable: a failed field is null beside the others' data, and the request
    # as a whole succeeded (200). Only when every field failed because an upstream service is
    # down does the status say so (503), as the REST routes do.
    codes = {(e.extensions or {}).get("code") for e in result.errors or ()}
    data = result.data or {}
    status = (
        503 if result.errors and codes == {"UNAVAILABLE"} and all(v is None for v in data.values()) else 200
    )
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json")


@router.api_route("/graphql", methods=["GET", "POST"], include_in_schema=False)
async def graphql_endpoint(
    request: Request, settings: Annotated[GatewaySettings, Depends(deps.settings)]
) -> Response:
    """Execute a GraphQL query.

    POST: `{"query": "...", "variables": {...}, "operationName": "..."}`;
    GET: `?query=...` (optional `variables` as JSON, `operationName`), queries only.
    """
    if request.method == "POST":
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return problem(400, f"the body may be at most {MAX_BODY_BYTES} bytes", param="query")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return problem(400, f"the body may be at most {MAX_BODY_BYTES} bytes", param="query")
        try:
            document = orjson.loads(bytes(raw))
        except orjson.JSONDecodeError:
            return problem(400, "the body is not valid JSON", param="query")
        return await _execute(request, document, settings)
    q = request.query_params
    unknown = set(q) - {"query", "variables", "operationName"}
    if unknown:
        return problem(400, "unknown parameter", param=sorted(unknown)[0])
    get_document: dict[str, Any] = {"query": q.get("query"), "operationName": q.get("operationName")}
    if "variables" in q:
        try:
            get_document["variables"] = orjson.loads(q["variables"])
        except orjson.JSONDecodeError:
            return problem(400, "'variables' is not valid JSON", param="variables")
    if get_document["query"] and parse_is_mutation(get_document["query"]):
        return problem(405, "mutations are not served over GET", headers={"Allow": "POST"})
    return await _execute(request, get_document, settings)


def parse_is_mutation(query: str) -> bool:
    try:
        ast = parse(query)
    except GraphQLError:
        return False
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation is not OperationType.QUERY
        for d in ast.definitions
    )
