"""REST: historical analysis of the reference series (fluctuation, volatility, trend, OHLC, forecast)
and intraday OHLC bars from the live ticks (`analysis.intraday`, RatesService.ListTicks).

The answers themselves are built in `analysis.answers` (shared with GraphQL). Every route pages
`GetTimeSeries` (366 days per call) through `analysis.series.fetch`, so a
range may span up to ten years. Exact decimal strings where the statistic allows it, float64
JSON numbers where it needs logarithms (volatility, forecast); see docs/analysis.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from kurs_common import validation
from kurs_common.errors import InvalidArgument, NotFound
from kurs_common.timeutil import today_utc
from kurs_gateway import views
from kurs_gateway.analysis import answers
from kurs_gateway.analysis import forecast as forecasting
from kurs_gateway.analysis.series import MAX_ANALYSIS_DAYS, before, fetch
from kurs_gateway.deps import Cache, Settings, Stub
from kurs_gateway.fastpath import BodyCache
from kurs_gateway.params import only
from kurs_gateway.routes.rates import CODE, DATE, Base, Symbols

router = APIRouter(prefix="/analysis", tags=["analysis"])

Start = Annotated[str, Query(description="YYYY-MM-DD, inclusive", pattern=DATE)]
End = Annotated[
    str, Query(description=f"YYYY-MM-DD, inclusive; at most {MAX_ANALYSIS_DAYS} days", pattern=DATE)
]
FORECAST_MAX_YEARS = 8
RANGE_PARAMS = ("start_date", "end_date", "base", "symbols")
MAX_WINDOW = answers.MAX_WINDOW


def _span(
    start_date: Start,
    end_date: End,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
) -> answers.Range:
    """The range query parameters every range route takes (a dependency: one declaration)."""
    return answers.Range(base, symbols, start_date, end_date)


Span = Annotated[answers.Range, Depends(_span)]


def _send(request: Request, cache: BodyCache, body: dict[str, Any], final: bool = True) -> Response:
    """The answer, cached like other history when `final` (its figures can no longer change)."""
    raw = views.dumps(body)
    if final:
        cache.store(request.url.path, request.scope["query_string"], raw)
    return Response(raw, media_type="application/json")


@router.get("/fluctuation", dependencies=[Depends(only(*RANGE_PARAMS))])
async def fluctuation(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    span: Span,
) -> Response:
    """First and last rate of the range per currency, the exact change and the change in percent
    (rounded half-even to 6 places), with the highest and lowest rate and their dates."""
    return _send(request, cache, await answers.fluctuation(stub, settings.upstream_timeout_seconds, span))


@router.get("/volatility", dependencies=[Depends(only(*RANGE_PARAMS, "window"))])
async def volatility(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    span: Span,
    window: Annotated[int, Query(ge=2, le=MAX_WINDOW, description="returns per rolling window")] = 21,
) -> Response:
    """Realised volatility (float64): daily log returns, sample standard deviation, annualised by
    sqrt(252); over the whole range and rolling over `window` returns (warmed up before the range)."""
    body = await answers.volatility(stub, settings.upstream_timeout_seconds, span, window)
    return _send(request, cache, body)


@router.get("/trend", dependencies=[Depends(only(*RANGE_PARAMS, "fast", "slow", "kind"))])
async def trend(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    span: Span,
    fast: Annotated[int, Query(ge=1, le=MAX_WINDOW, description="fast window (publication days)")] = 20,
    slow: Annotated[int, Query(ge=2, le=MAX_WINDOW, description="slow window (publication days)")] = 50,
    kind: Annotated[Literal["sma", "ema"], Query(description="sma or ema")] = "sma",
) -> Response:
    """Fast and slow moving averages (decimal, 10 significant digits) per publication day of the
    range, warmed up before it, and the direction at its end (up: fast above slow)."""
    body = await answers.trend(stub, settings.upstream_timeout_seconds, span, fast, slow, kind)
    return _send(request, cache, body)


@router.get("/ohlc", dependencies=[Depends(only(*RANGE_PARAMS, "interval"))])
async def ohlc(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    span: Span,
    interval: Annotated[
        str,
        Query(
            description="1m, 5m, 15m or 1h from the live ticks (UTC days, at most 31, symbols required); "
            "1d, 1w (ISO week) or 1mo from the fixings"
        ),
    ] = "1d",
) -> Response:
    """Open, high, low and close of every period: intraday from the live ticks, daily and longer
    from the fixings (exact strings either way; a period without a tick or fixing has no bar)."""
    body, final = await answers.ohlc(stub, settings.upstream_timeout_seconds, span, interval)
    return _send(request, cache, body, final)


@router.get("/forecast", dependencies=[Depends(only("base", "symbol", "years", "end_date"))])
async def forecast(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    symbol: Annotated[str, Query(description="ISO 4217 code of the quoted currency", pattern=CODE)],
    base: Base = "USD",
    years: Annotated[
        int, Query(ge=1, le=FORECAST_MAX_YEARS, description="years of walk-forward backtest")
    ] = 2,
    end_date: Annotated[
        str | None, Query(description="YYYY-MM-DD: last day of history used; today when absent", pattern=DATE)
    ] = None,
) -> Response:
    """The next publication day's rate from a baseline model (AR(1) on log returns), always with
    its walk-forward backtest against the random walk (MAE, MAPE) and a plain verdict."""
    code = views.require_currency_shape("base", base)
    quote = validation.currency("symbol", symbol)
    if quote == code:
        raise InvalidArgument("symbol", "must differ from base")
    last = today_utc() if end_date is None else validation.date("end_date", end_date)
    first = before(last, 365 * years)
    origin = before(first, forecasting.TRAIN_DAYS)
    fetched = await fetch(stub, code, [quote], origin, last, settings.upstream_timeout_seconds, "end_date")
    series = fetched.series.get(quote)
    if series is None:
        raise NotFound("symbol", f"no rates of {quote} against {code}")
    try:
        result = forecasting.backtest(series, first)
    except forecasting.NotEnoughHistory as exc:
        raise NotFound("years", str(exc)) from exc
    body = {
        "base": fetched.base,
        "symbol": quote,
        "model": forecasting.MODEL,
        "description": forecasting.MODEL_DESCRIPTION,
        "numeric": "float64",
        "horizon": "1 publication day",
        "forecast": forecasting.next_value(series),
        "backtest": result,
        "verdict": forecasting.verdict(result),
        "sources": list(fetched.sources),
    }
    return _send(request, cache, body)
