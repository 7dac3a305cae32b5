"""gRPC form of the analysis endpoints (kurs.analysis.v1.AnalysisService, issue #12), served by
the gateway process on KURS_GATEWAY_GRPC_ADDRESS (off when empty).

Each RPC calls the same function of `analysis.answers` that REST and GraphQL call (same checks,
same figures, same error texts) and turns its body into the typed response: bad input is
INVALID_ARGUMENT "field: reason" naming the request field, no rate NOT_FOUND; the rates service
being down or slow is UNAVAILABLE or DEADLINE_EXCEEDED (REST: 503, 504), any other failure of
it INTERNAL (REST: 502).

The listener is started and stopped by the app's lifespan, with health checking and reflection
(`kurs_common.grpcserver`). Under granian with several workers every worker binds the same
address: gRPC sets SO_REUSEPORT on Linux, so the kernel spreads connections over the workers
(docs/analysis.md). It does not check API keys: `start` refuses to run when keys are required.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from kurs.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from kurs.rates.v1 import rates_pb2_grpc
from kurs_common.errors import QueryError, Unavailable
from kurs_common.grpcserver import RunningServer, start_server
from kurs_common.metrics import ServiceMetrics
from kurs_gateway.analysis import answers
from kurs_gateway.settings import GatewaySettings

T = TypeVar("T")
log = logging.getLogger(__name__)
SERVICE = analysis_pb2.DESCRIPTOR.services_by_name["AnalysisService"].full_name
# The REST defaults (routes/analysis.py) for a field left absent.
DEFAULT_BASE = "USD"
DEFAULT_WINDOW = 21
DEFAULT_FAST = 20
DEFAULT_SLOW = 50
DEFAULT_KIND = "sma"
DEFAULT_INTERVAL = "1d"


# The four requests share their first four fields (start_date, end_date, base, symbols).
AnalysisRequest = (
    analysis_pb2.FluctuationRequest
    | analysis_pb2.VolatilityRequest
    | analysis_pb2.TrendRequest
    | analysis_pb2.OhlcRequest
)


def _range(request: AnalysisRequest) -> answers.Range:
    return answers.Range(
        request.base or DEFAULT_BASE, list(request.symbols), request.start_date, request.end_date
    )


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    """The status REST's problem handlers (problems.py) give the same failure."""
    if isinstance(exc, QueryError):
        code = grpc.StatusCode.NOT_FOUND if exc.status_code == 404 else grpc.StatusCode.INVALID_ARGUMENT
        await context.abort(code, f"{exc.field}: {exc.reason}")
    if isinstance(exc, Unavailable):
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"unavailable: {exc}")
    if isinstance(exc, TimeoutError):
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "rates service did not answer in time")
    if isinstance(exc, grpc.aio.AioRpcError):
        await context.abort(*_upstream(exc))
    raise exc


def _upstream(exc: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    """The rates service's failure: its "field: reason" passed on for a bad or unknown argument,
    like problems.from_grpc; any status not meant for our callers is INTERNAL."""
    code = exc.code()
    details = exc.details() or code.name
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        return code, details
    if code == grpc.StatusCode.UNAVAILABLE:
        return code, f"rates service unavailable: {details}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return code, "rates service did not answer in time"
    log.error("unexpected upstream status", extra={"code": code.name, "details": details})
    return grpc.StatusCode.INTERNAL, f"rates service error: {code.name}"


async def _answer(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (QueryError, Unavailable, TimeoutError, grpc.aio.AioRpcError) as exc:
        await _abort(context, exc)


def _head(body: dict[str, Any]) -> dict[str, Any]:
    head = {k: body[k] for k in ("base", "start_date", "end_date", "sources")}
    head["missing"] = body.get("missing", [])
    return head


def fluctuation_response(body: dict[str, Any]) -> analysis_pb2.FluctuationResponse:
    rates = [analysis_pb2.Fluctuation(currency=code, **figures) for code, figures in body["rates"].items()]
    return analysis_pb2.FluctuationResponse(rates=rates, **_head(body))


def volatility_response(body: dict[str, Any]) -> analysis_pb2.VolatilityResponse:
    rates = [
        analysis_pb2.Volatility(
            currency=code,
            observations=item["observations"],
            returns=item["returns"],
            volatility=item["volatility"],
            rolling=[
                analysis_pb2.RollingVolatility(date=d, volatility=v) for d, v in item["rolling"].items()
            ],
        )
        for code, item in body["rates"].items()
    ]
    return analysis_pb2.VolatilityResponse(
        window=body["window"],
        annualisation_days=body["annualisation_days"],
        numeric=body["numeric"],
        rates=rates,
        **_head(body),
    )


def trend_response(body: dict[str, Any]) -> analysis_pb2.TrendResponse:
    rates = [
        analysis_pb2.Trend(
            currency=code,
            direction=item["direction"] or "",
            last_date=item["last_date"],
            rate=item["rate"],
            fast=item["fast"],
            slow=item["slow"],
            series=[
                analysis_pb2.TrendPoint(date=d, fast=p["fast"], slow=p["slow"])
                for d, p in item["series"].items()
            ],
        )
        for code, item in body["rates"].items()
    ]
    return analysis_pb2.TrendResponse(
        kind=body["kind"],
        fast_window=body["fast_window"],
        slow_window=body["slow_window"],
        rates=rates,
        **_head(body),
    )


def ohlc_response(body: dict[str, Any], final: bool) -> analysis_pb2.OhlcResponse:
    rates = [
        analysis_pb2.CurrencyBars(currency=code, bars=[analysis_pb2.Bar(**bar) for bar in bars])
        for code, bars in body["rates"].items()
    ]
    return analysis_pb2.OhlcResponse(interval=body["interval"], rates=rates, final=final, **_head(body))


class AnalysisServicer(analysis_pb2_grpc.AnalysisServiceServicer):
    """AnalysisService over `answers`, reading history through the gateway's rates stub."""

    def __init__(self, stub: rates_pb2_grpc.RatesServiceStub, deadline: float) -> None:
        self.stub = stub
        self.deadline = deadline

    async def Fluctuation(
        self, request: analysis_pb2.FluctuationRequest, context: grpc.aio.ServicerContext
    ) -> analysis_pb2.FluctuationResponse:
        body = await _answer(context, lambda: answers.fluctuation(self.stub, self.deadline, _range(request)))
        return fluctuation_response(body)

    async def Volatility(
        self, request: analysis_pb2.VolatilityRequest, context: grpc.aio.ServicerContext
    ) -> analysis_pb2.VolatilityResponse:
        window = request.window if request.HasField("window") else DEFAULT_WINDOW
        body = await _answer(
            context, lambda: answers.volatility(self.stub, self.deadline, _range(request), window)
        )
        return volatility_response(body)

    async def Trend(
        self, request: analysis_pb2.TrendRequest, context: grpc.aio.ServicerContext
    ) -> analysis_pb2.TrendResponse:
        fast = request.fast if request.HasField("fast") else DEFAULT_FAST
        slow = request.slow if request.HasField("slow") else DEFAULT_SLOW
        kind = request.kind or DEFAULT_KIND
        body = await _answer(
            context, lambda: answers.trend(self.stub, self.deadline, _range(request), fast, slow, kind)
        )
        return trend_response(body)

    async def Ohlc(
        self, request: analysis_pb2.OhlcRequest, context: grpc.aio.ServicerContext
    ) -> analysis_pb2.OhlcResponse:
        interval = request.interval or DEFAULT_INTERVAL
        body, final = await _answer(
            context, lambda: answers.ohlc(self.stub, self.deadline, _range(request), interval)
        )
        return ohlc_response(body, final)


async def start(
    settings: GatewaySettings, stub: rates_pb2_grpc.RatesServiceStub, metrics: ServiceMetrics | None = None
) -> RunningServer:
    """Serve AnalysisService (with health and reflection) on settings.grpc_address."""
    if settings.auth == "keys" or settings.api_keys:
        raise RuntimeError(
            "KURS_GATEWAY_GRPC_ADDRESS: the gRPC analysis listener does not check API keys; "
            "leave it empty while keys are required (KURS_GATEWAY_AUTH=keys or KURS_GATEWAY_API_KEYS)"
        )

    def register(server: grpc.aio.Server) -> list[str]:
        analysis_pb2_grpc.add_AnalysisServiceServicer_to_server(
            AnalysisServicer(stub, settings.upstream_timeout_seconds), server
        )
        return [SERVICE]

    return await start_server(settings.grpc_address, register, metrics)
