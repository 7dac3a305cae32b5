"""The answers of the analysis endpoints, one function each, shared by REST (routes/analysis.py)
and GraphQL (routes/graphql_analysis.py): validation, paged history, statistics, answer body.

Bodies use the REST field names (snake_case); GraphQL renames them. Each validation error names
the argument as the caller spelled it (`Names`: start_date for REST, startDate for GraphQL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from kurs.rates.v1 import rates_pb2_grpc
from kurs_common.errors import InvalidArgument
from kurs_common.timeutil import utcnow
from kurs_gateway import views
from kurs_gateway.analysis import intraday, stats
from kurs_gateway.analysis.series import Fetched, analysis_range, before, fetch

MAX_WINDOW = 260
INTERVALS = ("1d", "1w", "1mo")
ALL_INTERVALS = (*intraday.INTRADAY_SECONDS, *INTERVALS)
KINDS = ("sma", "ema")


@dataclass(frozen=True, slots=True)
class Names:
    """How the caller spells the arguments (for errors)."""

    start: str = "start_date"
    end: str = "end_date"


REST = Names()
Stub = rates_pb2_grpc.RatesServiceStub


@dataclass(frozen=True, slots=True)
class Range:
    """The validated arguments every analysis shares."""

    base: str
    symbols: list[str]
    start: str
    end: str
    names: Names = REST


def _warmup(points: int) -> int:
    """Calendar days that hold at least `points` publication days (5 a week, minus holidays)."""
    return points * 7 // 5 + 20


def _bounded(field: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low} and {high}")
    return value


async def _load(
    stub: Stub, deadline: float, span: Range, warmup: int = 0
) -> tuple[dt.date, dt.date, Fetched, list[str]]:
    first, last = analysis_range(span.names.start, span.start, span.names.end, span.end)
    code = views.require_currency_shape("base", span.base)
    wanted = views.require_symbols_shape(span.symbols)
    origin = before(first, _warmup(warmup)) if warmup else first
    fetched = await fetch(stub, code, wanted, origin, last, deadline, span.names.start)
    missing = [c for c in wanted if c not in fetched.series or fetched.series[c].dates[-1] < first]
    return first, last, fetched, missing


def _body(
    head: dict[str, Any], rates: dict[str, Any], fetched: Fetched, missing: list[str]
) -> dict[str, Any]:
    body = {**head, "rates": rates, "sources": list(fetched.sources)}
    if missing:
        body["missing"] = missing  # asked for, but no rate in the range
    return body


def _in_range(fetched: Fetched, first: dt.date) -> dict[str, Any]:
    return {c: s for c, s in fetched.series.items() if s.dates and s.dates[-1] >= first}


def _head(fetched: Fetched, first: dt.date, last: dt.date, **extra: Any) -> dict[str, Any]:
    return {"base": fetched.base, "start_date": first.isoformat(), "end_date": last.isoformat(), **extra}


async def fluctuation(stub: Stub, deadline: float, span: Range) -> dict[str, Any]:
    first, last, fetched, missing = await _load(stub, deadline, span)
    rates = {c: stats.fluctuation(s) for c, s in fetched.series.items()}
    return _body(_head(fetched, first, last), rates, fetched, missing)


async def volatility(stub: Stub, deadline: float, span: Range, window: int) -> dict[str, Any]:
    _bounded("window", window, 2, MAX_WINDOW)
    first, last, fetched, missing = await _load(stub, deadline, span, warmup=window + 1)
    rates = {c: stats.volatility(s, window, first) for c, s in _in_range(fetched, first).items()}
    head = _head(
        fetched,
        first,
        last,
        window=window,
        annualisation_days=stats.ANNUALISATION_DAYS,
        numeric="float64",
    )
    return _body(head, rates, fetched, missing)


async def trend(stub: Stub, deadline: float, span: Range, fast: int, slow: int, kind: str) -> dict[str, Any]:
    _bounded("fast", fast, 1, MAX_WINDOW)
    _bounded("slow", slow, 2, MAX_WINDOW)
    if kind not in KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(KINDS)}")
    if fast >= slow:
        raise InvalidArgument("fast", f"must be smaller than slow ({slow})")
    first, last, fetched, missing = await _load(stub, deadline, span, warmup=slow)
    average = cast(stats.MovingAverage, kind)
    rates = {c: stats.trend(s, fast, slow, average, first) for c, s in _in_range(fetched, first).items()}
    head = _head(fetched, first, last, kind=kind, fast_window=fast, slow_window=slow)
    return _body(head, rates, fetched, missing)


async def ohlc(stub: Stub, deadline: float, span: Range, interval: str) -> tuple[dict[str, Any], bool]:
    """The bars and whether the answer is final (cacheable like history): a range of intraday
    bars that has not ended yet is not."""
    if interval in intraday.INTRADAY_SECONDS:
        return await _intraday(stub, span, interval)
    if interval not in INTERVALS:
        raise InvalidArgument("interval", f"must be one of {', '.join(ALL_INTERVALS)}")
    first, last, fetched, missing = await _load(stub, deadline, span)
    bars = cast(stats.Interval, interval)
    rates = {c: stats.ohlc(s, bars) for c, s in fetched.series.items()}
    return _body(_head(fetched, first, last, interval=interval), rates, fetched, missing), True


async def _intraday(stub: Stub, span: Range, interval: str) -> tuple[dict[str, Any], bool]:
    names = span.names
    first, last = analysis_range(names.start, span.start, names.end, span.end)
    start, end = intraday.day_range(first, last, names.end)
    code = views.require_currency_shape("base", span.base)
    wanted = views.require_symbols_shape(span.symbols)
    ticks = await intraday.fetch_ticks(stub, code, wanted, start, end, names.start)
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
    return body, end <= utcnow()
