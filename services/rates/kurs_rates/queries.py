"""Answering rate queries from the store and the in-memory latest book.

Pure decisions (which day, which base, which symbols) live here; storage is behind RateStore.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, NotFound, Unavailable
from kurs_common.quotes import QuotedRate, rebase_entries
from kurs_rates.book import LatestBook
from kurs_rates.model import PIVOT, CurrencyRange, StoredRate
from kurs_rates.store import RateStore

__all__ = ["QuotedRate", "RateQueries", "rebase_rates"]

DEFAULT_BASE = "USD"


@dataclass(frozen=True, slots=True)
class RatesAnswer:
    base: str
    day: dt.date | None
    rates: tuple[QuotedRate, ...]


@dataclass(frozen=True, slots=True)
class SeriesAnswer:
    base: str
    start: dt.date
    end: dt.date
    days: dict[dt.date, dict[str, str]]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConvertAnswer:
    from_currency: str
    to_currency: str
    amount: str
    rate: str
    result: str
    day: dt.date
    sources: tuple[str, ...]


def rebase_rates(
    entries: dict[str, StoredRate], base: str, symbols: Sequence[str] | None
) -> tuple[QuotedRate, ...]:
    """Express effective pivot-based rates against `base`, each with its provenance."""
    return rebase_entries(entries, PIVOT, base, symbols)


class RateQueries:
    def __init__(self, store: RateStore, book: LatestBook, reference_source: str) -> None:
        self.store = store
        self.book = book
        self.source = reference_source
        self._ranges: list[CurrencyRange] | None = None
        self._stale = True
        self._generation = 0  # bumped by every invalidate(), so a read racing a write stays stale

    def invalidate(self) -> None:
        self._stale = True
        self._generation += 1

    async def currency_ranges(self) -> list[CurrencyRange]:
        if self._stale or self._ranges is None:
            generation = self._generation
            try:
                ranges = await self.store.currency_ranges(self.source)
            except (Unavailable, TimeoutError):
                if self._ranges is None:
                    raise
                return self._ranges  # the store is down: the last known ranges are still right enough
            self._stale = generation != self._generation
            if ranges:
                first = min(r.first_day for r in ranges)
                last = max(r.last_day for r in ranges)
                ranges.append(CurrencyRange(PIVOT, first, last))
            self._ranges = sorted(ranges, key=lambda r: r.code)
        return self._ranges

    async def served(self) -> set[str]:
        try:
            codes = {r.code for r in await self.currency_ranges()}
        except (Unavailable, TimeoutError):
            # The store is down and nothing is cached: the latest snapshot still defines what we serve.
            if not self.book.effective():
                raise
            codes = {PIVOT}
        codes.update(self.book.effective())
        codes.add(PIVOT)  # the pivot is always a valid base, even before any data arrived
        return codes

    async def _base_and_symbols(self, base: str, symbols: Sequence[str]) -> tuple[str, list[str] | None]:
        served = await self.served()
        code = validation.currency("base", base or DEFAULT_BASE, served)
        return code, validation.symbols("symbols", symbols, served)

    async def latest(self, base: str, symbols: Sequence[str]) -> RatesAnswer:
        code, wanted = await self._base_and_symbols(base, symbols)
        entries = self.book.effective()
        if not entries:
            raise NotFound("base", "no rates have been published yet")
        if code != PIVOT and code not in entries:
            raise NotFound("base", f"{code} has no current rate")
        rates = rebase_rates(entries, code, wanted)
        day = max((r.day for r in rates), default=max(e.day for e in entries.values()))
        return RatesAnswer(code, day, rates)

    async def _reference_on(self, field: str, requested: dt.date) -> tuple[dt.date, dict[str, str]]:
        day = await self.store.day_on_or_before(self.source, requested)
        if day is None:
            first = await self.store.first_day(self.source)
            hint = f"; the first is {first}" if first else ""
            raise NotFound(field, f"no rates on or before {requested}{hint}")
        return day, await self.store.rates_on(self.source, day)

    async def historical(self, date: str, base: str, symbols: Sequence[str]) -> tuple[dt.date, RatesAnswer]:
        requested = validation.date("date", date)
        code, wanted = await self._base_and_symbols(base, symbols)
        day, per_pivot = await self._reference_on("date", requested)
        if code != PIVOT and code not in per_pivot:
            raise NotFound("base", f"{code} has no rate on {day}")
        values = money.rebase(per_pivot, PIVOT, code, wanted)
        rates = tuple(QuotedRate(c, v, day, None, (self.source,)) for c, v in values.items())
        return requested, RatesAnswer(code, day, rates)

    async def timeseries(self, start: str, end: str, base: str, symbols: Sequence[str]) -> SeriesAnswer:
        first, last = validation.date_range("start_date", start, "end_date", end)
        code, wanted = await self._base_and_symbols(base, symbols)
        opening = await self.store.first_day(self.source)
        if opening is None or last < opening:
            raise NotFound("end_date", f"no rates before {opening}" if opening else "no rates published yet")
        raw = await self.store.series(self.source, first, last)
        days = {
            day: money.rebase(per_pivot, PIVOT, code, wanted)
            for day, per_pivot in raw.items()
            if code == PIVOT or code in per_pivot
        }
        return SeriesAnswer(code, first, last, days, (self.source,))

    async def convert(self, from_currency: str, to_currency: str, amount: str, date: str) -> ConvertAnswer:
        served = await self.served()
        src = validation.currency("from", from_currency, served)
        dst = validation.currency("to", to_currency, served)
        try:
            value = money.parse_amount(amount)
        except money.DecimalFormatError as exc:
            raise InvalidArgument("amount", str(exc)) from exc
        if date:
            _, answer = await self.historical(date, src, [dst])
        else:
            answer = await self.latest(src, [dst])
        if not answer.rates:
            raise NotFound("to", f"{dst} has no rate on {answer.day}")
        quoted = answer.rates[0]
        return ConvertAnswer(
            src,
            dst,
            money.format_decimal(value),
            quoted.value,
            money.convert(value, quoted.value),
            quoted.day,
            quoted.sources,
        )
