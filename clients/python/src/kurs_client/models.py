"""Typed results: exact Decimal values, dates, and where every figure came from.

Every value is parsed from the decimal text the source sent (never through a float). Each
`Rate` carries its provenance: the business date it belongs to and the sources it came from.
A result also says how it was obtained (`origin`), whether it is a stale last good value
(`stale`) and which figures were triangulated through USD (`Rate.via`).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Literal

# Kurs's own rules (README "REST API"): cross rates 10 significant digits, results 6 places.
CROSS_DIGITS = 10
RESULT_PLACES = Decimal("0.000001")
_WORK = Context(prec=34, rounding=ROUND_HALF_EVEN)
_CROSS = Context(prec=CROSS_DIGITS, rounding=ROUND_HALF_EVEN)


class Origin(enum.StrEnum):
    """Where an answer came from."""

    KURS = "kurs"
    CACHE = "cache"  # a fresh cached Kurs or ExchangeRate-API answer
    EXCHANGERATE_API = "exchangerate-api"


def parse_decimal(text: str | Decimal | int) -> Decimal:
    """An exact decimal from text (or an int/Decimal a JSON parser produced); never a float."""
    if isinstance(text, float):  # pragma: no cover - defensive: floats lose digits
        raise TypeError("rates are never floats")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    return value


def cross(per_usd_quote: Decimal, per_usd_base: Decimal) -> Decimal:
    """quote per base from two figures per USD, rounded half-even to 10 significant digits."""
    return _CROSS.divide(per_usd_quote, per_usd_base)


def convert_amount(amount: Decimal, rate: Decimal) -> Decimal:
    """amount * rate rounded half-even to 6 decimal places (Kurs's conversion rule)."""
    return _WORK.multiply(amount, rate).quantize(RESULT_PLACES, rounding=ROUND_HALF_EVEN, context=_WORK)


def parse_date(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class Rate:
    """One currency's value per one unit of the base of the answer carrying it."""

    currency: str
    value: Decimal
    date: dt.date | None  # the business date the figure belongs to
    sources: tuple[str, ...]  # publishers it came from ("ecb", ...; "exchangerate-api")
    observed_at: dt.datetime | None = None
    flag: str = ""  # a publisher's figure the blend kept out, and why
    replay: bool = False
    via: str | None = None  # "USD" when computed as a cross through USD (a missing pair)


@dataclass(frozen=True, slots=True)
class Rates:
    """Rates against one base: `latest()` and `historical()`."""

    base: str
    date: dt.date | None  # newest business date among the rates
    rates: Mapping[str, Rate]
    origin: Origin = Origin.KURS
    stale: bool = False  # the last good value, served because every live source failed
    sequence: int | None = None  # latest(): the stream sequence the snapshot reflects
    requested_date: dt.date | None = None  # historical(): the date asked for
    fetched_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __getitem__(self, currency: str) -> Decimal:
        return self.rates[currency.upper()].value

    @property
    def values(self) -> dict[str, Decimal]:
        return {code: rate.value for code, rate in self.rates.items()}

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({s for r in self.rates.values() for s in r.sources}))

    def marked(self, origin: Origin, *, stale: bool) -> Rates:
        return replace(self, origin=origin, stale=stale)


@dataclass(frozen=True, slots=True)
class TimeSeries:
    base: str
    start_date: dt.date
    end_date: dt.date
    days: Mapping[dt.date, Mapping[str, Decimal]]  # publication days only
    sources: tuple[str, ...]
    origin: Origin = Origin.KURS
    stale: bool = False

    def marked(self, origin: Origin, *, stale: bool) -> TimeSeries:
        return replace(self, origin=origin, stale=stale)


@dataclass(frozen=True, slots=True)
class Conversion:
    from_currency: str
    to_currency: str
    amount: Decimal
    rate: Decimal
    result: Decimal  # rounded half-even to 6 decimal places
    date: dt.date | None
    sources: tuple[str, ...]
    origin: Origin = Origin.KURS
    stale: bool = False
    via: str | None = None  # "USD" when the pair was triangulated

    def marked(self, origin: Origin, *, stale: bool) -> Conversion:
        return replace(self, origin=origin, stale=stale)


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    name: str
    first_date: dt.date | None
    last_date: dt.date | None
    active: bool


@dataclass(frozen=True, slots=True)
class PublisherCurrency:
    code: str
    first_date: dt.date | None
    last_date: dt.date | None


@dataclass(frozen=True, slots=True)
class Publisher:
    source: str
    first_date: dt.date | None
    last_date: dt.date | None
    currencies: tuple[PublisherCurrency, ...]


@dataclass(frozen=True, slots=True)
class Listing:
    """currencies() / publishers() answers, with how they were obtained."""

    currencies: tuple[Currency, ...] = ()
    publishers: tuple[Publisher, ...] = ()
    origin: Origin = Origin.KURS
    stale: bool = False

    def marked(self, origin: Origin, *, stale: bool) -> Listing:
        return replace(self, origin=origin, stale=stale)


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message as a transport received it (before the SDK's resume bookkeeping)."""

    sequence: int
    kind: Literal["snapshot", "update"]
    base: str
    date: dt.date | None
    rates: Mapping[str, Rate]


@dataclass(frozen=True, slots=True)
class RateEvent:
    """What `stream_rates()` yields. Apply events in order to keep a view of the rates:
    a snapshot replaces the view, an update carries only the rates that changed.

    Consecutive events chain: `previous_sequence` is the `sequence` of the event before (0 for
    the first), so a caller can check that nothing is missing. After a reconnect (`resumed`) the
    SDK delivers what changed meanwhile, once, and never a figure the caller already has.
    """

    kind: Literal["snapshot", "update"]
    sequence: int
    previous_sequence: int
    base: str
    date: dt.date | None
    rates: Mapping[str, Rate]
    endpoint: str
    resumed: bool = False


def rates_by_code(rates: Iterable[Rate]) -> dict[str, Rate]:
    return {r.currency: r for r in rates}
