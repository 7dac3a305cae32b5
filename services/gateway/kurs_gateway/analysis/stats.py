"""Statistics over one currency's series (pure functions; see docs/analysis.md).

Exactness, per statistic:

* fluctuation: exact `decimal`. `change` is end - start, exact; `change_pct` is
  change / start x 100 rounded half-even to PCT_PLACES decimal places; high/low/start/end are
  the stored strings themselves.
* OHLC bars: exact; every figure is one of the stored strings (no arithmetic).
* SMA: exact `decimal` mean of the window (sums of decimals are exact at 34 digits), then
  rounded half-even to 10 significant digits like every computed rate.
* EMA: `decimal` with 34 digits of working precision (alpha = 2 / (window + 1) is not a finite
  decimal), seeded with the SMA of the first window, rounded to 10 significant digits.
* volatility: float64 (numpy): it needs logarithms and a square root. Daily log returns
  ln(v_t / v_t-1) between consecutive publication days, sample standard deviation (ddof=1),
  annualised by sqrt(ANNUALISATION_DAYS).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal
from itertools import accumulate
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kurs_common import money
from kurs_gateway.analysis.series import Series

PCT_PLACES = 6
ANNUALISATION_DAYS = 252
_WORK = Context(prec=34, rounding=ROUND_HALF_EVEN)
_PCT_QUANTUM = Decimal(1).scaleb(-PCT_PLACES)

Interval = Literal["1d", "1w", "1mo"]
MovingAverage = Literal["sma", "ema"]


def rate_text(value: Decimal) -> str:
    """A computed rate: 10 significant digits, half-even, positional notation."""
    return money.format_decimal(money.round_significant(value))


def since(series: Series, first: dt.date) -> int:
    """Index of the first point dated `first` or later (len when none)."""
    for i, day in enumerate(series.dates):
        if day >= first:
            return i
    return len(series.dates)


def fluctuation(series: Series) -> dict[str, str]:
    """First and last figure of the series, their exact change and the change in percent."""
    values = [Decimal(v) for v in series.values]
    start, end = values[0], values[-1]
    change = _WORK.subtract(end, start)
    pct = _WORK.multiply(_WORK.divide(change, start), Decimal(100)).quantize(
        _PCT_QUANTUM, rounding=ROUND_HALF_EVEN, context=_WORK
    )
    high = max(range(len(values)), key=values.__getitem__)
    low = min(range(len(values)), key=values.__getitem__)
    return {
        "start_date": series.dates[0].isoformat(),
        "start_rate": series.values[0],
        "end_date": series.dates[-1].isoformat(),
        "end_rate": series.values[-1],
        "change": money.format_decimal(change) if change else "0",
        "change_pct": money.format_decimal(pct) if pct else "0",
        "high": series.values[high],
        "high_date": series.dates[high].isoformat(),
        "low": series.values[low],
        "low_date": series.dates[low].isoformat(),
    }


def log_returns(values: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """float64 daily log returns between consecutive values."""
    prices = np.asarray([float(v) for v in values], dtype=np.float64)
    result: np.ndarray[Any, np.dtype[np.float64]] = np.diff(np.log(prices))
    return result


def volatility(series: Series, window: int, first: dt.date) -> dict[str, Any]:
    """Annualised realised volatility over the points dated `first` or later, and its rolling
    `window`-return values for those dates (earlier points serve as warm-up only)."""
    start = since(series, first)
    returns = log_returns(series.values)
    scale = math.sqrt(ANNUALISATION_DAYS)
    in_range = returns[start:]  # return i ends on dates[i + 1]; those from dates[start] on
    full = float(np.std(in_range, ddof=1) * scale) if in_range.size >= 2 else None
    rolling: dict[str, float] = {}
    if returns.size >= window:
        values = np.std(sliding_window_view(returns, window), axis=1, ddof=1) * scale
        for j, value in enumerate(values.tolist()):  # window j ends with return j + window - 1
            day = series.dates[j + window]
            if day >= first:
                rolling[day.isoformat()] = value
    return {
        "observations": len(series.dates) - start,
        "returns": int(in_range.size),
        "volatility": full,
        "rolling": rolling,
    }


def sma(values: Sequence[Decimal], window: int) -> list[Decimal | None]:
    """Simple moving average, exact: (S_i - S_{i-w}) / w over prefix sums."""
    sums = [Decimal(0), *accumulate(values, _WORK.add)]
    out: list[Decimal | None] = [None] * min(window - 1, len(values))
    for i in range(window, len(sums)):
        out.append(_WORK.divide(_WORK.subtract(sums[i], sums[i - window]), Decimal(window)))
    return out


def ema(values: Sequence[Decimal], window: int) -> list[Decimal | None]:
    """Exponential moving average, alpha = 2 / (window + 1), seeded with the first window's SMA."""
    if len(values) < window:
        return [None] * len(values)
    alpha = _WORK.divide(Decimal(2), Decimal(window + 1))
    current = _WORK.divide(sum(values[:window], Decimal(0)), Decimal(window))
    out: list[Decimal | None] = [None] * (window - 1)
    out.append(current)
    for value in values[window:]:
        current = _WORK.add(current, _WORK.multiply(alpha, _WORK.subtract(value, current)))
        out.append(current)
    return out


_AVERAGES: dict[str, Callable[[Sequence[Decimal], int], list[Decimal | None]]] = {"sma": sma, "ema": ema}


def trend(series: Series, fast: int, slow: int, kind: MovingAverage, first: dt.date) -> dict[str, Any]:
    """Fast and slow moving averages for the dates from `first` on, and the direction at the end:
    up when the fast average is above the slow one, down when below, flat when equal (after
    rounding to 10 significant digits)."""
    values = [Decimal(v) for v in series.values]
    average = _AVERAGES[kind]
    fast_values, slow_values = average(values, fast), average(values, slow)
    points: dict[str, dict[str, str | None]] = {}
    for i in range(since(series, first), len(values)):
        f, s = fast_values[i], slow_values[i]
        points[series.dates[i].isoformat()] = {
            "fast": None if f is None else rate_text(f),
            "slow": None if s is None else rate_text(s),
        }
    last = next(reversed(points.values()), None) if points else None
    direction = None
    if last is not None and last["fast"] is not None and last["slow"] is not None:
        a, b = Decimal(last["fast"]), Decimal(last["slow"])
        direction = "up" if a > b else "down" if a < b else "flat"
    return {
        "direction": direction,
        "last_date": series.dates[-1].isoformat(),
        "rate": series.values[-1],
        "fast": None if last is None else last["fast"],
        "slow": None if last is None else last["slow"],
        "series": points,
    }


def _period(day: dt.date, interval: Interval) -> dt.date:
    if interval == "1w":
        return day - dt.timedelta(days=day.weekday())
    if interval == "1mo":
        return day.replace(day=1)
    return day


def ohlc(series: Series, interval: Interval) -> list[dict[str, Any]]:
    """Open/high/low/close of every period (1d, ISO week, calendar month) from the fixings."""
    bars: list[dict[str, Any]] = []
    key: dt.date | None = None
    high = low = Decimal(0)
    for day, text in zip(series.dates, series.values, strict=True):
        value = Decimal(text)
        period = _period(day, interval)
        if period != key:
            key, high, low = period, value, value
            bars.append(
                {
                    "period_start": period.isoformat(),
                    "first_date": day.isoformat(),
                    "open": text,
                    "high": text,
                    "low": text,
                    "close": text,
                    "last_date": day.isoformat(),
                    "count": 0,
                }
            )
        bar = bars[-1]
        if value > high:
            high, bar["high"] = value, text
        if value < low:
            low, bar["low"] = value, text
        bar["close"], bar["last_date"] = text, day.isoformat()
        bar["count"] += 1
    return bars
