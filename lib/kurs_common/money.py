"""Exact decimal handling of rates and amounts.

Rates travel as decimal strings. A publisher's own figure is never re-formatted: it is
validated and passed on as the same string. Computed figures (cross rates, conversions)
are computed in `decimal` with 34 digits of working precision and then rounded:

* cross rates: CROSS_RATE_SIGNIFICANT_DIGITS (10) significant digits, half-even;
* conversion results: RESULT_DECIMAL_PLACES (6) decimal places, half-even;

and formatted without exponent and without trailing zeros.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

CROSS_RATE_SIGNIFICANT_DIGITS = 10
RESULT_DECIMAL_PLACES = 6
MAX_AMOUNT = Decimal("1e15")
MAX_AMOUNT_DECIMALS = 8

_WORK = Context(prec=34, rounding=ROUND_HALF_EVEN)
# Plain positional decimals only: no exponent, no sign other than '-', no spaces.
_DECIMAL_RE = re.compile(r"\A-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")  # ASCII digits; no trailing newline


class DecimalFormatError(ValueError):
    """A string is not a plain positive decimal within bounds."""


def parse_decimal(text: str) -> Decimal:
    """Parse a plain decimal string ("1.1172"); reject exponents, NaN, infinities and junk."""
    if not isinstance(text, str) or not _DECIMAL_RE.match(text):
        raise DecimalFormatError(f"{text!r} is not a plain decimal number")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise DecimalFormatError(f"{text!r} is not a decimal number") from exc


def parse_rate(text: str) -> Decimal:
    """Parse a rate: a plain decimal strictly greater than zero."""
    value = parse_decimal(text)
    if value <= 0:
        raise DecimalFormatError(f"rate {text!r} must be greater than zero")
    return value


def parse_amount(text: str) -> Decimal:
    """Parse an amount to convert: > 0, at most MAX_AMOUNT, at most MAX_AMOUNT_DECIMALS decimals."""
    value = parse_decimal(text.strip()) if isinstance(text, str) else parse_decimal(text)
    if value <= 0:
        raise DecimalFormatError("amount must be greater than zero")
    if value > MAX_AMOUNT:
        raise DecimalFormatError(f"amount must be at most {format_decimal(MAX_AMOUNT)}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_AMOUNT_DECIMALS:
        raise DecimalFormatError(f"amount may have at most {MAX_AMOUNT_DECIMALS} decimal places")
    return value


def format_decimal(value: Decimal) -> str:
    """Positional notation, no exponent, no trailing zeros ("1.5", "2", "0.000123")."""
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def round_significant(value: Decimal, digits: int = CROSS_RATE_SIGNIFICANT_DIGITS) -> Decimal:
    """Round to `digits` significant digits, half-even."""
    if value.is_zero():
        return value
    exponent = value.adjusted() - digits + 1
    return value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN, context=_WORK)


# Division under this context is correctly rounded to the cross-rate precision in one step.
_CROSS = Context(prec=CROSS_RATE_SIGNIFICANT_DIGITS, rounding=ROUND_HALF_EVEN)


def _cross(base: Decimal, quote_per_pivot: str) -> str:
    value = _CROSS.divide(Decimal(quote_per_pivot), base)
    text = str(value)  # fast; falls back below when str() would use an exponent
    if "E" in text:
        return format_decimal(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def ratio(numerator: Decimal, denominator: Decimal) -> str:
    """numerator / denominator as a cross rate: one division, rounded once."""
    return _cross(denominator, str(numerator))


def cross_rate(base_per_pivot: str, quote_per_pivot: str) -> str:
    """Units of quote per one base, given both as units per one pivot currency."""
    return _cross(Decimal(base_per_pivot), quote_per_pivot)


def invert(rate: str) -> str:
    """1 / rate, rounded like any cross rate."""
    return _cross(Decimal(rate), "1")


def rebase(
    per_pivot: Mapping[str, str],
    pivot: str,
    base: str,
    symbols: Iterable[str] | None = None,
) -> dict[str, str]:
    """Express rates given against `pivot` against `base` instead.

    `per_pivot` maps currency -> units per one pivot (the pivot itself is implicit, 1).
    With base == pivot the published strings are returned untouched. A symbol equal to the
    base answers "1". Symbols missing from `per_pivot` are left out. Raises KeyError when the
    base itself has no rate.
    """
    if symbols is None:
        wanted = [code for code in (*per_pivot.keys(), pivot) if code != base]
    else:
        wanted = list(symbols)
    out: dict[str, str] = {}
    if base == pivot:
        for code in wanted:
            if code == pivot:
                out[code] = "1"
            elif code in per_pivot:
                out[code] = per_pivot[code]
        return out
    base_value = Decimal(per_pivot[base])
    for code in wanted:
        if code == base:
            out[code] = "1"
        elif code == pivot:
            out[code] = _cross(base_value, "1")
        elif code in per_pivot:
            out[code] = _cross(base_value, per_pivot[code])
    return out


def convert(amount: Decimal, rate: str) -> str:
    """amount x rate, rounded to RESULT_DECIMAL_PLACES decimal places (half-even)."""
    product = _WORK.multiply(amount, Decimal(rate))
    quantum = Decimal(1).scaleb(-RESULT_DECIMAL_PLACES)
    return format_decimal(product.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WORK))
