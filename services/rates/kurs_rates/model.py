"""Domain types of the rates service (no I/O)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kurs_common.errors import Unavailable
from kurs_common.rate import Rate, RateKind
from kurs_common.series import BLEND, CARRY_DAYS, PIVOT

__all__ = [
    "BLEND",
    "CARRY_DAYS",
    "PIVOT",
    "CurrencyRange",
    "Figure",
    "PublisherRange",
    "Rate",
    "RateKind",
    "StoreUnavailable",
    "TickKey",
    "TickSpan",
    "WriteResult",
    "publisher_ranges",
]


# A live tick's place in the keyset order of its pages: (observed_at, source, currency).
TickKey = tuple[dt.datetime, str, str]


@dataclass(frozen=True, slots=True)
class TickSpan:
    """The live ticks a page is cut from: of `currencies`, observed in [start, end), and only
    `source`'s when it is not empty."""

    currencies: Sequence[str]
    start: dt.datetime
    end: dt.datetime
    source: str = ""


@dataclass(frozen=True, slots=True)
class Figure:
    """A publisher's figure of one day as published: `value` units of `quote` per one `base`."""

    base: str
    quote: str
    value: str
    flag: str = ""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Rows that were inserted or whose value changed, in input order.
    changed: tuple[Rate, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class CurrencyRange:
    code: str
    first_day: dt.date
    last_day: dt.date


@dataclass(frozen=True, slots=True)
class PublisherRange:
    source: str
    first_day: dt.date
    last_day: dt.date
    currencies: tuple[CurrencyRange, ...]


class StoreUnavailable(Unavailable):
    """The backing store cannot be reached or timed out."""


def publisher_ranges(rows: Iterable[tuple[str, str, str, str, str]]) -> list[PublisherRange]:
    """(source, base, quote, first day, last day) rows -> each source's currencies and dates.

    A currency a publisher quotes in either position (its base or a quote) is one it publishes.
    """
    spans: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for source, base, quote, first, last in rows:
        for code in (base, quote):
            known = spans[source].get(code)
            spans[source][code] = (min(first, known[0]), max(last, known[1])) if known else (first, last)
    out: list[PublisherRange] = []
    for source in sorted(spans):
        currencies = tuple(
            CurrencyRange(code, dt.date.fromisoformat(a), dt.date.fromisoformat(b))
            for code, (a, b) in sorted(spans[source].items())
        )
        out.append(
            PublisherRange(
                source,
                min(c.first_day for c in currencies),
                max(c.last_day for c in currencies),
                currencies,
            )
        )
    return out
