"""Exactness (docs/validation.md § Exactness): times as integer microseconds, computed figures as text.

Rates stay decimal strings end to end. A source's own figure quoted per EUR is forwarded as its
published string; a figure the engine computes is formatted here: 10 significant digits, half-even,
no exponent, no trailing zeros (`text`).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Context, Decimal

from kurs_common import money

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICRO = dt.timedelta(microseconds=1)
ONE = Decimal(1)
ZERO = Decimal(0)

_SIGNIFICANT = Context(prec=money.CROSS_RATE_SIGNIFICANT_DIGITS, rounding=ROUND_HALF_EVEN)
_PERCENT = Decimal("0.01")


def micros(value: dt.datetime) -> int:
    """An instant as integer microseconds since the epoch (compared and subtracted cheaply)."""
    return (value - EPOCH) // MICRO


def text(value: Decimal) -> str:
    """A computed figure: 10 significant digits, half-even, no exponent, no trailing zeros."""
    return money.format_decimal(_SIGNIFICANT.plus(value))


def pct(value: Decimal) -> str:
    """A relative deviation as a percentage with two decimals ("1.5%")."""
    return f"{money.format_decimal((value * 100).quantize(_PERCENT))}%"
