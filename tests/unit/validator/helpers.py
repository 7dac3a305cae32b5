"""Builders of observations for the validator's tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.rate import Rate
from kurs_validator.engine import ValidationEngine
from kurs_validator.model import BatchOutcome
from kurs_validator.policy import Policy

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
START = dt.date(2026, 6, 1)


def fixing(
    source: str, quote: str, value: str, day: dt.date, base: str = "EUR", hour: int = 14
) -> Observation:
    return Observation(
        source=source,
        feed=f"{source}-daily",
        kind=REFERENCE,
        base=base,
        quote=quote,
        value=value,
        day=day.isoformat(),
        observed_at=dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC),
    )


def tick(source: str, base: str, quote: str, value: str, at: dt.datetime) -> Observation:
    return Observation(
        source=source,
        feed=f"{source}-ticks",
        kind=LIVE,
        base=base,
        quote=quote,
        value=value,
        day=at.date().isoformat(),
        observed_at=at,
    )


def business_days(count: int, start: dt.date = START) -> list[dt.date]:
    days: list[dt.date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def engine(priority: dict[str, float] | None = None) -> ValidationEngine:
    return ValidationEngine(Policy(priority=priority if priority is not None else {"ecb": 3.0}))


def run(eng: ValidationEngine, batches: Iterable[Sequence[Observation]]) -> list[BatchOutcome]:
    return [eng.process(list(batch), NOW) for batch in batches]


def reference_series(outcomes: Iterable[BatchOutcome]) -> dict[tuple[str, str], Rate]:
    """The last published reference rate of every (currency, date)."""
    out: dict[tuple[str, str], Rate] = {}
    for outcome in outcomes:
        for p in outcome.published:
            if p.kind == REFERENCE:
                out[(p.currency, p.day.isoformat())] = p
    return out


def picked_by(outcomes: Iterable[BatchOutcome]) -> dict[tuple[str, str], str]:
    """Whose figure each last published reference rate is (its quality record's `source`): the
    forwarded rate itself belongs to the blend, its contributors in `sources`."""
    out: dict[tuple[str, str], str] = {}
    for outcome in outcomes:
        records = {(q.currency, q.day, q.value): q.source for q in outcome.quality if q.kind == REFERENCE}
        for p in outcome.published:
            if p.kind == REFERENCE:
                out[(p.currency, p.day.isoformat())] = records[(p.currency, p.day, p.value)]
    return out


def wobble(values: Sequence[str], day_index: int) -> list[str]:
    """Deterministic small daily moves (+-0.3%) around each level, kept at 6 significant digits."""
    from decimal import Decimal

    from kurs_common import money

    out = []
    for i, v in enumerate(values):
        step = Decimal((day_index * 5 + i * 3) % 7 - 3) / Decimal(1000)
        out.append(money.format_decimal(money.round_significant(Decimal(v) * (1 + step), 6)))
    return out
