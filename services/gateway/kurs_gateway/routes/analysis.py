"""REST: historical analysis of the reference series (fluctuation, volatility, trend, OHLC, forecast)
and intraday OHLC bars from the live ticks (`analysis.intraday`, RatesService.ListTicks).

Every route pages `GetTimeSeries` (366 days per call) through `analysis.series.fetch`, so a
range may span up to ten years. Exact decimal strings where the statistic allows it, float64
JSON numbers where it needs logarithms (volatility, forecast); see docs/analysis.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from kurs_common import validation
from kurs_common.errors import InvalidArgument, NotFound
from kurs_common.timeutil import today_utc, utcnow
from kurs_gateway import views
from kurs_gateway.analysis import forecast as forecasting
from kurs_gateway.analysis import intraday, stats
from kurs_gateway.analysis.series import MAX_ANALYSIS_DAYS, Fetched, analysis_range, before, fetch
from kurs_gateway.fastpath import BodyCache
from kurs_gateway.params import only
from kurs_gateway.routes.rates import CODE, DATE, Base, Cache, Settings, Stub, Symbols

router = APIRouter(prefix="/analysis", tags=["analysis"])

Start = Annotated[str, Query(description="YYYY-MM-DD, inclusive", pattern=DATE)]
End = Annotated[
    str, Query(description=f"YYYY-MM-DD, inclusive; at most {MAX_ANALYSIS_DAYS} days", pattern=DATE)
]
MAX_WINDOW = 260
FORECAST_MAX_YEARS = 8
RANGE_PARAMS = ("start_date", "end_date", "base", "symbols")


def _warmup(points: int) -> int:
    """Calendar days that hold at least `points` publication days (5 a week, minus holidays)."""
    return points * 7 // 5 + 20


async def _load(
    stub: Stub, settings: Settings, base: str, symbols: list[str], start: str, end: str, warmup: int = 0
) -> tuple[dt.date, dt.date, Fetched, list[str]]:
    first, last = analysis_range("start_date", start, "end_date", end)
    code = views.require_currency_shape("base", base)
    wanted = views.require_symbols_shape(symbols)
    origin = before(first, _warmup(warmup)) if warmup else first
    fetched = await fetch(stub, code, wanted, origin, last, settings.upstream_timeout_seconds)
    missing = [c for c in wanted if c not in fetched.series or fetched.series[c].dates[-1] < first]
    return first, last, fetched, missing


def _send(request: Request, cache: BodyCache, body: dict[str, Any]) -> Response:
    raw = views.dumps(body)
    cache.store(request.url.path, request.scope["query_string"], raw, live=False)
    return Response(raw, media_type="application/json")


def _answer(
    request: Request,
    cache: BodyCache,
    head: dict[str, Any],
    rates: dict[str, Any],
    fetched: Fetched,
    missing: list[str],
) -> Response:
    body = {**head, "rates": rates, "sources": list(fetched.sources)}
    if missing:
        body["missing"] = missing  # asked for, but no rate in the range
    return _send(request, cache, body)


def _in_range(fetched: Fetched, first: dt.date) -> dict[str, Any]:
    return {c: s for c, s in fetched.series.items() if s.dates and s.dates[-1] >= first}


@router.get("/fluctuation", dependencies=[Depends(only(*RANGE_PARAMS))])
async def fluctuation(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    start_date: Start,
    end_date: End,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
) -> Response:
    """First and last rate of the range per currency, the exact change and the change in percent
    (rounded half-even to 6 places), with the highest and lowest rate and their dates."""
    first, last, fetched, missing = await _load(stub, settings, base, symbols, start_date, end_date)
    rates = {c: stats.fluctuation(s) for c, s in fetched.series.items()}
    head = {"base": fetched.base, "start_date": first.isoformat(), "end_date": last.isoformat()}
    return _answer(request, cache, head, rates, fetched, missing)


@router.get("/volatility", dependencies=[Depends(only(*RANGE_PARAMS, "window"))])
async def volatility(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    start_date: Start,
    end_date: End,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
    window: Annotated[int, Query(ge=2, le=MAX_WINDOW, description="returns per rolling window")] = 21,
) -> Response:
    """Realised volatility (float64): daily log returns, sample standard deviation, annualised by
    sqrt(252); over the whole range and rolling over `window` returns (warmed up before the range)."""
    first, last, fetched, missing = await _load(
        stub, settings, base, symbols, start_date, end_date, warmup=window + 1
    )
    rates = {c: stats.volatility(s, window, first) for c, s in _in_range(fetched, first).items()}
    head = {
        "base": fetched.base,
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "window": window,
        "annualisation_days": stats.ANNUALISATION_DAYS,
        "numeric": "float64",
    }
    return _answer(request, cache, head, rates, fetched, missing)


@router.get("/trend", dependencies=[Depends(only(*RANGE_PARAMS, "fast", "slow", "kind"))])
async def trend(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    start_date: Start,
    end_date: End,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
    fast: Annotated[int, Query(ge=1, le=MAX_WINDOW, description="fast window (publication days)")] = 20,
    slow: Annotated[int, Query(ge=2, le=MAX_WINDOW, description="slow window (publication days)")] = 50,
    kind: Annotated[Literal["sma", "ema"], Query(description="sma or ema")] = "sma",
) -> Response:
    """Fast and slow moving averages (decimal, 10 significant digits) per publication day of the
    range, warmed up before it, and the direction at its end (up: fast above slow)."""
    if fast >= slow:
        raise InvalidArgument("fast", f"must be smaller than slow ({slow})")
    first, last, fetched, missing = await _load(
        stub, settings, base, symbols, start_date, end_date, warmup=slow
    )
    rates = {c: stats.trend(s, fast, slow, kind, first) for c, s in _in_range(fetched, first).items()}
    head = {
        "base": fetched.base,
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "kind": kind,
        "fast_window": fast,
        "slow_window": slow,
    }
    return _answer(request, cache, head, rates, fetched, missing)


INTERVALS = ("1d", "1w", "1mo")
ALL_INTERVALS = (*intraday.INTRADAY_SECONDS, *INTERVALS)


@router.get("/ohlc", dependencies=[Depends(only(*RANGE_PARAMS, "interval"))])
async def ohlc(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    start_date: Start,
    end_date: End,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
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
    if interval in intraday.INTRADAY_SECONDS:
        return await _intraday(request, stub, cache, start_date, end_date, base, symbols, interval)
    if interval not in INTERVALS:
        raise InvalidArgument("interval", f"must be one of {', '.join(ALL_INTERVALS)}")
    first, last, fetched, missing = await _load(stub, settings, base, symbols, start_date, end_date)
    bars = cast(stats.Interval, interval)
    rates = {c: stats.ohlc(s, bars) for c, s in fetched.series.items()}
    head = {
        "base": fetched.base,
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "interval": interval,
    }
    return _answer(request, cache, head, rates, fetched, missing)


async def _intraday(
    request: Request,
    stub: Stub,
    cache: BodyCache,
    start_date: str,
    end_date: str,
    base: str,
    symbols: list[str],
    interval: str,
) -> Response:
    first, last = analysis_range("start_date", start_date, "end_date", end_date)
    start, end = intraday.day_range(first, last)
    code = views.require_currency_shape("base", base)
    wanted = views.require_symbols_shape(symbols)
    ticks = await intraday.fetch_ticks(stub, code, wanted, start, end)
    seconds = intraday.INTRADAY_SECONDS[interval]
    rates = {c: intraday.bars(ticks.by_currency[c], seconds) for c in wanted if c in ticks.by_currency}
    body: dict[str, Any] = {
        "base": ticks.base,
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "interval": interval,
        "rates": rates,
        "sources": sorted(ticks.sources),
    }
    missing = [c for c in wanted if c not in rates]
    if missing:
        body["missing"] = missing  # asked for, but no tick in the range
    if end <= utcnow():  # the range is over: its ticks will not change
        return _send(request, cache, body)
    return Response(views.dumps(body), media_type="application/json")


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
