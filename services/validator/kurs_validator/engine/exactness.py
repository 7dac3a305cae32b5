"""Exactness (docs/validation.md § Exactness): times as integer microseconds, computed figures as text.

Rates stay decimal strings end to end. A source's own figure quoted per EUR is forwarded as its
published string. A per-EUR figure the engine computes (a source quoting per USD, per GBP, or EUR
per unit) is forwarded with `PER_EUR_SIGNIFICANT_DIGITS` (28) significant digits (`per_eur`,
`per_eur_inverse`), so that the one rounding a client sees is the rates service's at read time.
The figures shown to people (the consensus and comparison values, the spread, the figures named in
an anomaly's detail) have 10 significant digits (`text`). All of them: half-even, no exponent, no
trailing zeros.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Context, Decimal

from kurs_common import money

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICRO = dt.timedelta(microseconds=1)
ONE = Decimal(1)
ZERO = Decimal(0)

# A computed per-EUR figure is forwarded with this many significant digits: the rates service
# rounds every figure it serves once, at read time (10 significant digits for a cross rate).
PER_EUR_SIGNIFICANT_DIGITS = 28

_SIGNIFICANT = Context(prec=money.CROSS_RATE_SIGNIFICANT_DIGITS, rounding=ROUND_HALF_EVEN)
_PER_EUR = Context(prec=PER_EUR_SIGNIFICANT_DIGITS, rounding=ROUND_HALF_EVEN)
_PERCENT = Decimal("0.01")


def micros(value: dt.datetime) -> int:
    """An instant as integer microseconds since the epoch (compared and subtracted cheaply)."""
    return (value - EPOCH) // MICRO


def text(value: Decimal) -> str:
    """A computed figure: 10 significant digits, half-even, no exponent, no trailing zeros."""
    return money.format_decimal(_SIGNIFICANT.plus(value))


def per_eur(value: Decimal) -> str:
    """A computed per-EUR figure to forward: 28 significant digits, half-even, no exponent, no
    trailing zeros."""
    return money.format_decimal(_PER_EUR.plus(value))


def per_eur_inverse(value: Decimal) -> str:
    """1 / value as a per-EUR figure to forward (a source quoting EUR per unit), as `per_eur`."""
    return money.format_decimal(_PER_EUR.divide(ONE, value))


def pct(value: Decimal) -> str:
    """A relative deviation as a percentage with two decimals ("1.5%")."""
    return f"{money.format_decimal((value * 100).quantize(_PERCENT))}%"
