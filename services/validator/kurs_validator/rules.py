"""Per-observation checks and normalisation to the pivot currency (pure, no I/O).

An observation is accepted when: its codes are ISO 4217 (or a known crypto ticker), a retired
code is not used on or after its retirement date, the value is a plain decimal > 0, its date is
a real date not in the future, and it can be expressed per one PIVOT:

* base == PIVOT: the published figure is kept as is (exact);
* quote == PIVOT: inverted (1/value, 10 significant digits);
* otherwise the same source's PIVOT cross at the same observation time in the same batch is
  used: value x (base per PIVOT).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from kurs_common import money
from kurs_common.currencies import CRYPTO, lookup
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.timeutil import DateFormatError, parse_date

PIVOT = "EUR"
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Accepted:
    index: int
    source: str
    kind: str
    currency: str
    value: str  # per one PIVOT
    day: dt.date
    observed_at: dt.datetime
    sources: tuple[str, ...]
    replay: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    reason: str
    detail: str


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _check_code(code: str, day: dt.date, field: str) -> None:
    if code in CRYPTO:
        return
    info = lookup(code)
    if info is None:
        raise _Reject("unknown_currency", f"{field} {code!r} is not an ISO 4217 code")
    if info.retired_on is not None and day >= info.retired_on:
        raise _Reject("retired_currency", f"{field} {code} was retired on {info.retired_on}")


def _check(obs: Observation, now: dt.datetime) -> tuple[dt.date, dt.datetime, Decimal]:
    if not obs.source:
        raise _Reject("missing_source", "source is required")
    if obs.kind not in (REFERENCE, LIVE):
        raise _Reject("missing_kind", "kind must be REFERENCE or LIVE")
    try:
        day = parse_date(obs.day)
    except DateFormatError as exc:
        raise _Reject("bad_date", str(exc)) from exc
    if obs.observed_at is None:
        raise _Reject("missing_observed_at", "observed_at is required")
    if obs.observed_at > now + MAX_CLOCK_SKEW or day > (now + MAX_CLOCK_SKEW).date():
        raise _Reject("future_dated", f"observed at {obs.observed_at.isoformat()}, after now")
    if obs.base == obs.quote:
        raise _Reject("same_currency", f"base and quote are both {obs.base}")
    _check_code(obs.base, day, "base")
    _check_code(obs.quote, day, "quote")
    try:
        value = money.parse_rate(obs.value)
    except money.DecimalFormatError as exc:
        raise _Reject("bad_value", str(exc)) from exc
    return day, obs.observed_at, value


def validate_batch(
    observations: Sequence[Observation], now: dt.datetime
) -> tuple[list[Accepted], list[Rejected]]:
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    checked: list[tuple[int, Observation, dt.date, dt.datetime]] = []
    # Same-source pivot crosses available in this batch: (source, observed_at, currency) -> per pivot.
    pivots: dict[tuple[str, dt.datetime, str], str] = {}
    for index, obs in enumerate(observations):
        try:
            day, observed_at, _ = _check(obs, now)
        except _Reject as exc:
            rejected.append(Rejected(index, exc.reason, exc.detail))
            continue
        checked.append((index, obs, day, observed_at))
        if obs.base == PIVOT:
            pivots[(obs.source, observed_at, obs.quote)] = obs.value
        elif obs.quote == PIVOT:
            pivots.setdefault((obs.source, observed_at, obs.base), money.invert(obs.value))

    for index, obs, day, observed_at in checked:
        if obs.base == PIVOT:
            currency, value = obs.quote, obs.value
        elif obs.quote == PIVOT:
            currency, value = obs.base, money.invert(obs.value)
        else:
            base_per_pivot = pivots.get((obs.source, observed_at, obs.base))
            if base_per_pivot is None:
                rejected.append(
                    Rejected(
                        index, "no_pivot_cross", f"no {PIVOT}/{obs.base} from {obs.source} at the same time"
                    )
                )
                continue
            currency = obs.quote
            value = money.format_decimal(
                money.round_significant(Decimal(obs.value) * Decimal(base_per_pivot))
            )
        accepted.append(
            Accepted(
                index, obs.source, obs.kind, currency, value, day, observed_at, (obs.source,), obs.replay
            )
        )
    return accepted, rejected
