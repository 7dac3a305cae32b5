"""A baseline forecast per pair with its walk-forward backtest against the random walk.

Model: AR(1) with a constant on daily log returns, r_t = c + phi r_t-1 + e_t, fitted by
statsmodels' `AutoReg` (OLS). The forecast of the next publication day's rate is
P_t = P_t-1 exp(c + phi r_t-1). The random walk (no change, P_t = P_t-1) is the benchmark every
exchange-rate model has to beat, and usually does not.

Walk-forward backtest: for every publication day of the backtest period the model is fitted
only on returns known the day before (an expanding window, refitted every REFIT_EVERY
points and at the first one); each one-step forecast is compared with the published figure.
MAE is in units of the quote currency per base; MAPE in percent. Everything here is float64.

A lower MAE alone is not a win: the model "beats the random walk" only when its MAE is lower
AND a Diebold-Mariano test on the absolute errors (one-step horizon, normal approximation)
rejects equal accuracy at SIGNIFICANCE.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from statsmodels.tsa.ar_model import AutoReg

from kurs_gateway.analysis.series import Series

MIN_TRAIN_RETURNS = 250  # about one year of publication days before the first forecast
TRAIN_DAYS = 730  # history fetched before the backtest period for the first fit
MIN_TEST_POINTS = 20
REFIT_EVERY = 21  # about a month of publication days
SIGNIFICANCE = 0.05
MODEL = "ar1-log-returns"
MODEL_DESCRIPTION = (
    "AR(1) with a constant on daily log returns (statsmodels AutoReg, OLS), refitted every "
    f"{REFIT_EVERY} publication days on an expanding window; one publication day ahead"
)


class NotEnoughHistory(ValueError):
    """Fewer points than the backtest needs."""


def fit_ar1(returns: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[float, float]:
    """(c, phi) of r_t = c + phi r_t-1 fitted by statsmodels' AutoReg. A rate that did not move
    (a peg) has no lag to fit: (mean, 0)."""
    if float(np.ptp(returns[:-1])) == 0.0:
        return float(np.mean(returns)), 0.0
    result = AutoReg(returns, lags=1, trend="c").fit()
    c, phi = (float(p) for p in result.params)
    return c, phi


def _errors(actual: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> dict[str, float]:
    err = np.abs(actual - predicted)
    return {"mae": float(err.mean()), "mape_pct": float((err / actual).mean() * 100.0)}


def diebold_mariano(model_abs: np.ndarray[Any, Any], walk_abs: np.ndarray[Any, Any]) -> tuple[float, float]:
    """DM statistic of d = |e_model| - |e_walk| (negative: the model is better) and the one-sided
    p-value of "the model is more accurate" (normal approximation, horizon 1)."""
    d = model_abs - walk_abs
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        return 0.0, 0.5
    stat = float(np.mean(d)) / (sd / math.sqrt(d.size))
    return stat, 0.5 * math.erfc(-stat / math.sqrt(2.0))


def backtest(series: Series, first: dt.date) -> dict[str, Any]:
    """Walk-forward one-step forecasts for the points dated `first` or later.

    Raises NotEnoughHistory when fewer than MIN_TRAIN_RETURNS returns precede the first
    forecast point or fewer than MIN_TEST_POINTS points are left to forecast.
    """
    prices = np.asarray([float(v) for v in series.values], dtype=np.float64)
    returns = np.diff(np.log(prices))  # returns[k] = ln(P[k+1] / P[k])
    # Forecasting P[t] uses returns[: t - 1] (up to P[t-1]); the model needs the last one, r[t-2].
    start = next((i for i, day in enumerate(series.dates) if day >= first), len(series.dates))
    start = max(start, MIN_TRAIN_RETURNS + 1)
    if len(prices) - start < MIN_TEST_POINTS:
        raise NotEnoughHistory(
            f"{len(series.dates)} publication days: a backtest needs {MIN_TRAIN_RETURNS + 1} before "
            f"its first forecast and at least {MIN_TEST_POINTS} to forecast"
        )
    targets = np.arange(start, len(prices))
    predicted_log_return = np.empty(targets.size)
    c = phi = 0.0
    for j, t in enumerate(targets.tolist()):
        if j % REFIT_EVERY == 0:
            c, phi = fit_ar1(returns[: t - 1])
        predicted_log_return[j] = c + phi * returns[t - 2]
    actual = prices[targets]
    previous = prices[targets - 1]
    predicted = previous * np.exp(predicted_log_return)
    model = _errors(actual, predicted)
    walk = _errors(actual, previous)
    ratio = model["mae"] / walk["mae"] if walk["mae"] else None
    stat, p_value = diebold_mariano(np.abs(actual - predicted), np.abs(actual - previous))
    return {
        "start_date": series.dates[start].isoformat(),
        "end_date": series.dates[-1].isoformat(),
        "points": int(targets.size),
        "refit_every": REFIT_EVERY,
        "model": model,
        "random_walk": walk,
        "mae_ratio": ratio,
        "lower_mae": bool(model["mae"] < walk["mae"]),
        "diebold_mariano": {"statistic": stat, "p_value": p_value},
        "beats_random_walk": bool(model["mae"] < walk["mae"] and p_value < SIGNIFICANCE),
    }


def next_value(series: Series) -> dict[str, Any]:
    """The model's forecast of the next publication day after the last point, fitted on all."""
    prices = np.asarray([float(v) for v in series.values], dtype=np.float64)
    returns = np.diff(np.log(prices))
    c, phi = fit_ar1(returns)
    return {
        "after_date": series.dates[-1].isoformat(),
        "value": float(prices[-1] * math.exp(c + phi * float(returns[-1]))),
        "random_walk": series.values[-1],
        "parameters": {"c": c, "phi": phi},
    }


def verdict(result: dict[str, Any]) -> str:
    if result["random_walk"]["mae"] == 0.0:
        return (
            "The rate did not move during the backtest (a peg): the random walk's forecast was "
            "exact and no model can beat it."
        )
    ratio = result["mae_ratio"]
    p_value = result["diebold_mariano"]["p_value"]
    if result["beats_random_walk"]:
        return (
            f"The model beat the random walk in the backtest: its MAE is {ratio:.4f} times the "
            f"random walk's (Diebold-Mariano p = {p_value:.3f}). Use it with its measured error."
        )
    closer = " (lower, but not significantly)" if result["lower_mae"] else ""
    return (
        f"The model does NOT beat the random walk: its MAE is {ratio:.4f} times the random walk's"
        f"{closer}, Diebold-Mariano p = {p_value:.3f}. The best forecast measured here is no "
        "change: the last published rate."
    )
