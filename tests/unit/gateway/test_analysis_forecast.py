"""analysis.forecast: the walk-forward backtest on real ECB history against an independent
computation (AR(1) by least squares with numpy, random-walk errors with fractions)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from kurs_gateway.analysis import forecast
from kurs_gateway.analysis.series import Series
from support.ecb_csv import published_series


def ecb_series(history_csv: str, currency: str, first: str, last: str) -> Series:
    """Units of `currency` per EUR as published, oldest first, between first and last inclusive."""
    points = published_series(history_csv, currency, first, last)
    return Series([d for d, _ in points], [v for _, v in points])


def ols_ar1(returns: list[float]) -> tuple[float, float]:
    x = np.column_stack([np.ones(len(returns) - 1), returns[:-1]])
    (c, phi), *_ = np.linalg.lstsq(x, np.asarray(returns[1:]), rcond=None)
    return float(c), float(phi)


@pytest.mark.parametrize("currency", ["USD", "GBP"])
def test_backtest_matches_an_independent_walk_forward(history_csv: str, currency: str) -> None:
    series = ecb_series(history_csv, currency, "2022-01-01", "2026-12-31")
    first = dt.date(2025, 1, 1)
    got = forecast.backtest(series, first)

    prices = [float(v) for v in series.values]
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    start = next(i for i, d in enumerate(series.dates) if d >= first)
    model_errors, model_pct, walk_errors = [], [], []
    c = phi = 0.0
    for j, t in enumerate(range(start, len(prices))):
        if j % forecast.REFIT_EVERY == 0:
            c, phi = ols_ar1(returns[: t - 1])
        predicted = prices[t - 1] * math.exp(c + phi * returns[t - 2])
        model_errors.append(abs(prices[t] - predicted))
        model_pct.append(abs(prices[t] - predicted) / prices[t] * 100)
        walk_errors.append(abs(Fraction(series.values[t]) - Fraction(series.values[t - 1])))
    n = len(model_errors)
    assert got["points"] == n
    assert got["start_date"] == series.dates[start].isoformat()
    assert got["model"]["mae"] == pytest.approx(sum(model_errors) / n, rel=1e-9)
    assert got["model"]["mape_pct"] == pytest.approx(sum(model_pct) / n, rel=1e-9)
    assert got["random_walk"]["mae"] == pytest.approx(float(sum(walk_errors) / n), rel=1e-12)
    assert got["mae_ratio"] == pytest.approx(got["model"]["mae"] / got["random_walk"]["mae"])
    d = np.asarray(model_errors) - np.asarray([float(e) for e in walk_errors])
    dm = float(d.mean() / (d.std(ddof=1) / math.sqrt(n)))
    assert got["diebold_mariano"]["statistic"] == pytest.approx(dm, rel=1e-6)
    assert got["beats_random_walk"] == (got["lower_mae"] and got["diebold_mariano"]["p_value"] < 0.05)
    # the published verdict says what the numbers say
    text = forecast.verdict(got)
    assert ("does NOT beat" in text) == (not got["beats_random_walk"])


def test_model_beats_the_random_walk_when_returns_are_autocorrelated() -> None:
    rng = np.random.default_rng(7)
    returns = [0.0]
    for _ in range(800):
        returns.append(0.6 * returns[-1] + rng.normal(0, 0.005))
    prices = np.exp(np.cumsum(returns)) * 1.1
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(len(prices))]
    series = Series(days, [f"{p:.6f}" for p in prices])
    got = forecast.backtest(series, days[400])
    assert got["beats_random_walk"] is True
    assert got["mae_ratio"] < 0.95
    assert "beat the random walk" in forecast.verdict(got)
    nxt = forecast.next_value(series)
    assert nxt["after_date"] == days[-1].isoformat()
    assert nxt["parameters"]["phi"] == pytest.approx(0.6, abs=0.1)


def test_not_enough_history_is_refused(history_csv: str) -> None:
    series = ecb_series(history_csv, "USD", "2025-01-01", "2025-12-31")
    with pytest.raises(forecast.NotEnoughHistory):
        forecast.backtest(series, dt.date(2025, 6, 1))


def test_a_peg_is_answered_honestly() -> None:
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(400)]
    series = Series(days, ["1.9558"] * len(days))
    got = forecast.backtest(series, days[300])
    assert got["random_walk"]["mae"] == 0.0
    assert got["beats_random_walk"] is False
    assert "did not move" in forecast.verdict(got)
    assert forecast.next_value(series)["value"] == pytest.approx(1.9558)
