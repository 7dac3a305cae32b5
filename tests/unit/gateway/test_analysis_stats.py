"""analysis.stats on real ECB history, each statistic against an independent computation
(fractions for the exact ones, math/statistics for the float64 one)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

import pytest

from kurs_gateway.analysis import stats
from kurs_gateway.analysis.series import Series, windows
from support.ecb_csv import published_series


def ecb_series(
    history_csv: str, currency: str, first: str = "1999-01-01", last: str = "9999-12-31"
) -> Series:
    """Units of `currency` per EUR as published, oldest first, between first and last inclusive."""
    points = published_series(history_csv, currency, first, last)
    return Series([d for d, _ in points], [v for _, v in points])


_WIDE = Context(prec=80)


def rounded10(value: Fraction) -> str:
    """A fraction rounded half-even to 10 significant digits, positional, no trailing zeros."""
    exact = _WIDE.divide(Decimal(value.numerator), Decimal(value.denominator))
    quantum = Decimal(1).scaleb(exact.adjusted() - 9)
    text = format(exact.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WIDE), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@pytest.mark.parametrize("currency", ["USD", "JPY", "GBP", "TRY"])
def test_fluctuation_is_exact(history_csv: str, currency: str) -> None:
    series = ecb_series(history_csv, currency, "2025-01-01", "2025-12-31")
    got = stats.fluctuation(series)
    start, end = Fraction(series.values[0]), Fraction(series.values[-1])
    assert Fraction(got["change"]) == end - start
    pct_exact = (end - start) / start * 100
    pct = _WIDE.divide(Decimal(pct_exact.numerator), Decimal(pct_exact.denominator))
    assert abs(Fraction(got["change_pct"]) - pct_exact) <= Fraction(1, 2 * 10**6)
    assert Decimal(got["change_pct"]) == pct.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    assert got["start_date"] == series.dates[0].isoformat()
    assert got["start_rate"] == series.values[0]
    assert got["end_rate"] == series.values[-1]
    assert Fraction(got["high"]) == max(Fraction(v) for v in series.values)
    assert Fraction(got["low"]) == min(Fraction(v) for v in series.values)


def test_fluctuation_of_a_flat_series_is_zero() -> None:
    series = Series([dt.date(2025, 1, 2), dt.date(2025, 1, 3)], ["1.5", "1.50"])
    got = stats.fluctuation(series)
    assert (got["change"], got["change_pct"]) == ("0", "0")


@pytest.mark.parametrize("currency", ["USD", "JPY", "CHF"])
def test_volatility_matches_statistics_stdev(history_csv: str, currency: str) -> None:
    series = ecb_series(history_csv, currency, "2023-06-01", "2025-12-31")
    first = dt.date(2024, 1, 1)
    got = stats.volatility(series, 21, first)
    prices = [float(v) for v in series.values]
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    start = next(i for i, d in enumerate(series.dates) if d >= first)
    expected = statistics.stdev(returns[start:]) * math.sqrt(252)
    assert got["volatility"] == pytest.approx(expected, rel=1e-9)
    assert got["returns"] == len(returns) - start
    # every rolling value: the 21 returns ending on that day
    assert len(got["rolling"]) == len(series.dates) - start
    for i in (start, start + 100, len(series.dates) - 1):
        window = returns[i - 21 : i]
        assert got["rolling"][series.dates[i].isoformat()] == pytest.approx(
            statistics.stdev(window) * math.sqrt(252), rel=1e-9
        )


def test_volatility_without_enough_returns() -> None:
    series = Series([dt.date(2025, 1, 2), dt.date(2025, 1, 3)], ["1.1", "1.2"])
    got = stats.volatility(series, 5, dt.date(2025, 1, 1))
    assert got["volatility"] is None
    assert got["rolling"] == {}


@pytest.mark.parametrize(("currency", "fast", "slow"), [("USD", 20, 50), ("JPY", 5, 200), ("GBP", 1, 2)])
def test_sma_and_ema_match_fractions(history_csv: str, currency: str, fast: int, slow: int) -> None:
    series = ecb_series(history_csv, currency, "2024-01-01", "2025-12-31")
    exact = [Fraction(v) for v in series.values]
    first = dt.date(2025, 1, 1)
    start = next(i for i, d in enumerate(series.dates) if d >= first)

    def sma(i: int, n: int) -> Fraction:
        return sum(exact[i - n + 1 : i + 1], Fraction(0)) / n

    def emas(n: int) -> list[Fraction | None]:
        alpha = Fraction(2, n + 1)
        out: list[Fraction | None] = [None] * (n - 1)
        current = sma(n - 1, n)
        out.append(current)
        for value in exact[n:]:
            current = current + alpha * (value - current)
            out.append(current)
        return out

    got = stats.trend(series, fast, slow, "sma", first)
    for i in (start, start + 37, len(exact) - 1):
        point = got["series"][series.dates[i].isoformat()]
        assert point == {"fast": rounded10(sma(i, fast)), "slow": rounded10(sma(i, slow))}
    expected = "up" if sma(len(exact) - 1, fast) > sma(len(exact) - 1, slow) else "down"
    assert got["direction"] == expected
    got_ema = stats.trend(series, fast, slow, "ema", first)
    fast_ema, slow_ema = emas(fast), emas(slow)
    for i in (start, start + 37, len(exact) - 1):
        f, s = fast_ema[i], slow_ema[i]
        assert f is not None
        assert s is not None
        assert got_ema["series"][series.dates[i].isoformat()] == {"fast": rounded10(f), "slow": rounded10(s)}


def test_trend_before_the_slow_window_fills() -> None:
    series = Series([dt.date(2025, 1, d) for d in (2, 3, 6)], ["1", "2", "3"])
    got = stats.trend(series, 2, 5, "sma", dt.date(2025, 1, 1))
    assert got["series"]["2025-01-02"] == {"fast": None, "slow": None}
    assert got["series"]["2025-01-06"] == {"fast": "2.5", "slow": None}
    assert got["direction"] is None


@pytest.mark.parametrize("interval", ["1d", "1w", "1mo"])
def test_ohlc_bars_match_grouping(history_csv: str, interval: stats.Interval) -> None:
    series = ecb_series(history_csv, "USD", "2025-01-01", "2025-06-30")
    got = stats.ohlc(series, interval)

    def key(day: dt.date) -> str:
        if interval == "1w":
            return dt.date.fromisocalendar(*day.isocalendar()[:2], 1).isoformat()
        return day.replace(day=1).isoformat() if interval == "1mo" else day.isoformat()

    groups: dict[str, list[str]] = {}
    for day, value in zip(series.dates, series.values, strict=True):
        groups.setdefault(key(day), []).append(value)
    assert [bar["period_start"] for bar in got] == list(groups)
    for bar in got:
        values = groups[bar["period_start"]]
        assert bar["open"] == values[0]
        assert bar["close"] == values[-1]
        assert bar["high"] == max(values, key=Decimal)
        assert bar["low"] == min(values, key=Decimal)
        assert bar["count"] == len(values)
    if interval == "1d":
        assert all(b["open"] == b["high"] == b["low"] == b["close"] for b in got)


def test_windows_cover_the_range_in_366_day_steps() -> None:
    first, last = dt.date(2016, 2, 29), dt.date(2026, 1, 1)
    parts = windows(first, last)
    assert parts[0][0] == first
    assert parts[-1][1] == last
    for (a, b), (c, _) in itertools.pairwise(parts):
        assert (b - a).days + 1 == 366
        assert c == b + dt.timedelta(days=1)
    assert windows(first, first) == [(first, first)]
