"""Per-observation rules that need no state (pure, no I/O).

* `check_static`: the source, kind, dates and codes are usable and the value is a positive number;
* `classify`: how a figure deviates from what was expected (inverted, decimal shift, jump).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from kurs_common import money
from kurs_common.currencies import CRYPTO, lookup
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.timeutil import DateFormatError, parse_date
from kurs_validator.policy import PIVOT

__all__ = ["PIVOT", "Reject", "check_static", "classify"]

_ONE = Decimal(1)
_TEN = Decimal(10)
# An inversion is told from noise only when the inverted figure is at least this far off.
_MIN_VISIBLE_INVERSION = Decimal("0.05")


class Reject(Exception):
    """An observation fails a rule: `reason` is machine-readable, `detail` explains it, `field` is
    the observation's field at fault ("value" for a figure judged against others or its history)."""

    def __init__(self, reason: str, detail: str, expected: str = "", *, field: str = "value") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.expected = expected
        self.field = field


def _check_code(code: str, day: dt.date, field: str) -> None:
    if code in CRYPTO:
        return
    info = lookup(code)
    if info is None:
        raise Reject("unknown_currency", f"{field} {code!r} is not an ISO 4217 code", field=field)
    if info.retired_on is not None and day >= info.retired_on:
        raise Reject("retired_currency", f"{field} {code} was retired on {info.retired_on}", field=field)


def _parse_value(text: str) -> Decimal:
    try:
        return money.parse_rate(text)
    except money.DecimalFormatError as exc:
        try:
            number = Decimal(text.strip()) if isinstance(text, str) else None
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite() and number <= 0:
            raise Reject("non_positive", f"rate {text!r} must be greater than zero") from exc
        raise Reject("not_a_number", str(exc)) from exc


def check_static(obs: Observation, now: dt.datetime, max_skew: dt.timedelta) -> tuple[dt.date, Decimal]:
    """Rules on one observation alone; returns its business date and value. Raises Reject."""
    if not obs.source:
        raise Reject("missing_source", "source is required", field="source")
    if obs.kind not in (REFERENCE, LIVE):
        raise Reject("missing_kind", "kind must be REFERENCE or LIVE", field="kind")
    try:
        day = parse_date(obs.day)
    except DateFormatError as exc:
        raise Reject("bad_date", str(exc), field="date") from exc
    if obs.observed_at is None:
        raise Reject("missing_observed_at", "observed_at is required", field="observed_at")
    limit = now + max_skew
    if obs.observed_at > limit or day > limit.date():
        raise Reject(
            "future_dated",
            f"observed at {obs.observed_at.isoformat()} ({day}), after now",
            field="observed_at" if obs.observed_at > limit else "date",
        )
    if obs.base == obs.quote:
        raise Reject("same_currency", f"base and quote are both {obs.base}", field="quote")
    _check_code(obs.base, day, "base")
    _check_code(obs.quote, day, "quote")
    return day, _parse_value(obs.value)


def classify(
    value: Decimal,
    expected: Decimal,
    threshold: Decimal,
    inversion_tolerance: Decimal,
    shift_tolerance: Decimal,
) -> str | None:
    """None when |value/expected - 1| <= threshold; else "inverted", "decimal_shift" or "jump".

    inverted: value x expected is within `inversion_tolerance` of 1 (the figure is 1/expected);
    decimal_shift: value / expected is within `shift_tolerance` of 10^n for some n != 0.
    """
    ratio = value / expected
    deviation = abs(ratio - _ONE)
    if deviation <= threshold:
        return None
    if deviation > _MIN_VISIBLE_INVERSION and abs(value * expected - _ONE) <= inversion_tolerance:
        return "inverted"
    exponent = ratio.adjusted()
    for n in (exponent, exponent + 1):
        if n != 0 and abs(ratio / _TEN**n - _ONE) <= shift_tolerance:
            return "decimal_shift"
    return "jump"
