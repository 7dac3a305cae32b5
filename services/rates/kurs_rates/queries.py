"""Answering rate queries from the store and the in-memory latest rates.

Two series answer: the blended reference series (the default: every currency any reference
publisher publishes, one figure per date, see kurs_common.series) and, with `source=`, one
publisher's own figures exactly as published. Pure decisions (which day, which base, which
symbols) live here; storage is behind RateStore.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, NotFound, Unavailable
from kurs_common.quotes import from_published, home_currency, published_days, rebase_entries
from kurs_common.rate import UNOBSERVED, Rate, RateKind
from kurs_rates.answers import ConvertAnswer, RatesAnswer, SeriesAnswer, SeriesJson
from kurs_rates.book import LatestRates
from kurs_rates.model import BLEND, PIVOT, CurrencyRange, Figure, PublisherRange
from kurs_rates.series_cache import SeriesCache
from kurs_rates.series_days import (
    PerPivot,
    PublisherDay,
    pack,
    render_per_pivot,
    render_published,
    size_per_pivot,
    size_published,
)
from kurs_rates.store import RateStore

__all__ = ["RateQueries", "rebase_rates"]

DEFAULT_BASE = "USD"


def rebase_rates(entries: dict[str, Rate], base: str, symbols: Sequence[str] | None) -> tuple[Rate, ...]:
    """Express effective pivot-based rates against `base`, each with its provenance."""
    return rebase_entries(entries, PIVOT, base, symbols)


class RateQueries:
    def __init__(
        self,
        store: RateStore,
        book: LatestRates,
        reference_source: str,
        *,
        series_max_age: float | None = None,
    ) -> None:
        """`series_max_age`: with several replicas writing one database, how long a cached
        month of a series is trusted (see kurs_rates.series_cache); None for a single writer."""
        self.store = store
        self.book = book
        self.source = reference_source
        self._series: SeriesCache[PerPivot] = SeriesCache(
            render_per_pivot, size_per_pivot, max_age=series_max_age
        )
        self._published_series: SeriesCache[PublisherDay] = SeriesCache(
            render_published, size_published, max_age=series_max_age
        )
        self._opening: dt.date | None = None  # the reference source's first day, once read
        self._ranges: list[CurrencyRange] | None = None
        self._publishers: dict[str, PublisherRange] | None = None
        self._stale = True
        self._generation = 0  # bumped by every invalidate(), so a read racing a write stays stale

    def invalidate(self) -> None:
        self._stale = True
        self._publishers = None
        self._opening = None
        self._generation += 1
        # A new reference set (this replica's write or another replica's, via the fan-out):
        # the series' months from its oldest day on may have changed.
        oldest = min((r.day for r in self.book.reference.values()), default=None)
        self._series.forget_from(self.source, oldest)

    def note_published(self, rates: Iterable[Rate]) -> None:
        """Forget the cached series months a write changed, and the publisher list when the
        write added a publisher, a currency or a date outside it."""
        rates = list(rates)
        changed: dict[str, list[dt.date]] = defaultdict(list)
        for rate in rates:
            changed[rate.source].append(rate.day)
        for source, days in changed.items():
            self._series.forget(source, days)
            self._published_series.forget(source, days)
        known = self._publishers
        if known is None:
            return
        codes: dict[str, set[str]] = {}  # each publisher's currencies, built once per write
        for rate in rates:
            if rate.source == self.source or rate.source == BLEND:
                continue
            publisher = known.get(rate.source)
            if publisher is None or not publisher.first_day <= rate.day <= publisher.last_day:
                self._publishers = None
                return
            quoted = codes.get(rate.source)
            if quoted is None:
                quoted = codes[rate.source] = {c.code for c in publisher.currencies}
            if rate.currency not in quoted or rate.base not in quoted:
                self._publishers = None
                return

    async def publishers(self) -> dict[str, PublisherRange]:
        """Every publisher with stored figures (not the blend), by source id."""
        cached = self._publishers
        if cached is None:
            generation = self._generation
            cached = {p.source: p for p in await self.store.publishers() if p.source != BLEND}
            if generation == self._generation:
                self._publishers = cached
        return cached

    async def _publisher(self, source: str) -> PublisherRange | None:
        """None for the blended series (no source), else the named publisher; 400 if unknown."""
        if not source or source == self.source:
            return None
        known = await self.publishers()
        found = known.get(source.strip().lower())
        if found is None:
            names = ", ".join(sorted(known)) or "none yet"
            raise InvalidArgument("source", f"unknown source {source!r} (publishers: {names})")
        return found

    async def _publisher_codes(
        self, publisher: PublisherRange, base: str, symbols: Sequence[str]
    ) -> tuple[str, list[str] | None]:
        served = {c.code for c in publisher.currencies}
        default = base or home_of(publisher)
        code = validation.currency("base", default, served)
        return code, validation.symbols("symbols", symbols, served)

    async def _refuse_before_opening(self, last: dt.date) -> None:
        """404 for a series of the reference source ending before its first day (read once)."""
        opening = self._opening
        if opening is None:
            generation = self._generation
            opening = await self.store.first_day(self.source)
            if generation == self._generation:
                self._opening = opening
        if opening is None or last < opening:
            raise NotFound("end_date", f"no rates before {opening}" if opening else "no rates published yet")

    async def _publisher_series_codes(
        self, publisher: PublisherRange, base: str, symbols: Sequence[str], last: dt.date
    ) -> tuple[str, list[str] | None]:
        """`_publisher_codes` for a series ending on `last`; 404 when it ends before the
        publisher's first day."""
        code, wanted = await self._publisher_codes(publisher, base, symbols)
        if last < publisher.first_day:
            raise NotFound("end_date", f"{publisher.source} has no rates before {publisher.first_day}")
        return code, wanted

    def _published(
        self,
        publisher: PublisherRange,
        day: dt.date,
        figures: list[Figure],
        base: str,
        wanted: list[str] | None,
        dates: dict[tuple[str, str], dt.date] | None = None,
    ) -> RatesAnswer:
        """A publisher's figures against `base`; `dates`: each published pair's own date when
        they differ (a latest answer), else every figure is of `day`."""
        try:
            values = from_published([(f.base, f.quote, f.value) for f in figures], base, wanted)
        except KeyError:
            raise NotFound("base", f"{publisher.source} published no {base} figure on {day}") from None
        home = home_currency((f.base, f.quote) for f in figures)
        flags = {(f.quote if f.base == home else f.base): f.flag for f in figures if f.flag}
        own = published_days(dates, base, values) if dates else {}
        src = (publisher.source,)
        rates = tuple(
            Rate(
                publisher.source,
                RateKind.REFERENCE,
                c,
                v,
                own.get(c, day),
                UNOBSERVED,
                src,
                False,
                base,
                flags.get(c, ""),
            )
            for c, v in values.items()
        )
        return RatesAnswer(base, day, rates)

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

    async def latest(self, base: str, symbols: Sequence[str], source: str = "") -> RatesAnswer:
        publisher = await self._publisher(source)
        if publisher is not None:
            code, wanted = await self._publisher_codes(publisher, base, symbols)
            # "Latest" as everywhere: each figure's newest publication of the last CARRY_DAYS.
            newest = await self.store.as_of(publisher.source, publisher.last_day)
            figures = [Figure(r.base, r.currency, r.value, r.flag) for r in newest]
            day = max((r.day for r in newest), default=publisher.last_day)
            dates = {(r.base, r.currency): r.day for r in newest}
            return self._published(publisher, day, figures, code, wanted, dates)
        code, wanted = await self._base_and_symbols(base, symbols)
        entries = self.book.effective()
        if not entries:
            raise NotFound("base", "no rates have been published yet")
        if code != PIVOT and code not in entries:
            raise NotFound("base", f"{code} has no current rate")
        rates = rebase_rates(entries, code, wanted)
        day = max((r.day for r in rates), default=max(e.day for e in entries.values()))
        return RatesAnswer(code, day, rates)

    async def _day_on_or_before(self, source: str, field: str, requested: dt.date) -> dt.date:
        day = await self.store.day_on_or_before(source, requested)
        if day is None:
            first = await self.store.first_day(source)
            hint = f"; the first is {first}" if first else ""
            raise NotFound(field, f"no rates on or before {requested}{hint}")
        return day

    async def historical(
        self, date: str, base: str, symbols: Sequence[str], source: str = ""
    ) -> tuple[dt.date, RatesAnswer]:
        requested = validation.date("date", date)
        publisher = await self._publisher(source)
        if publisher is not None:
            code, wanted = await self._publisher_codes(publisher, base, symbols)
            day = await self._day_on_or_before(publisher.source, "date", requested)
            figures = await self.store.figures_on(publisher.source, day)
            return requested, self._published(publisher, day, figures, code, wanted)
        code, wanted = await self._base_and_symbols(base, symbols)
        day = await self._day_on_or_before(self.source, "date", requested)
        # Each currency's newest figure of the last CARRY_DAYS days: one publisher's holiday (or
        # a weekly table) does not hide the others' currencies; each figure keeps its own date.
        entries = {r.currency: r for r in await self.store.as_of(self.source, day) if r.base == PIVOT}
        if code != PIVOT and code not in entries:
            raise NotFound("base", f"{code} has no rate on {day}")
        return requested, RatesAnswer(code, day, rebase_rates(entries, code, wanted))

    async def timeseries(
        self, start: str, end: str, base: str, symbols: Sequence[str], source: str = ""
    ) -> SeriesAnswer:
        first, last = validation.date_range("start_date", start, "end_date", end)
        publisher = await self._publisher(source)
        if publisher is not None:
            code, wanted = await self._publisher_series_codes(publisher, base, symbols, last)
            figures = await self.store.figure_series(publisher.source, first, last)
            days: dict[dt.date, dict[str, str]] = {}
            for day, published in figures.items():
                try:
                    days[day] = from_published([(f.base, f.quote, f.value) for f in published], code, wanted)
                except KeyError:
                    continue  # the base was not published that day
            return SeriesAnswer(code, first, last, days, (publisher.source,))
        code, wanted = await self._base_and_symbols(base, symbols)
        await self._refuse_before_opening(last)
        raw = await self.store.series(self.source, first, last)
        days = {
            day: money.rebase(per_pivot, PIVOT, code, wanted)
            for day, per_pivot in raw.items()
            if code == PIVOT or code in per_pivot
        }
        if self.source == BLEND:
            sources = await self.store.contributors(self.source, first, last)
        else:
            sources = (self.source,)
        return SeriesAnswer(code, first, last, days, sources)

    async def timeseries_json(
        self, start: str, end: str, base: str, symbols: Sequence[str], source: str = ""
    ) -> SeriesJson:
        """`timeseries`, checked the same way, its days as prebuilt JSON from the columnar cache.

        Every figure is the string `timeseries` answers (the same functions render it, once per
        day and base); tests/integration/rates/test_series_json.py pins the bytes equal.
        """
        first, last = validation.date_range("start_date", start, "end_date", end)
        publisher = await self._publisher(source)
        if publisher is not None:
            code, wanted = await self._publisher_series_codes(publisher, base, symbols, last)
            name = publisher.source

            async def published(a: dt.date, b: dt.date) -> list[tuple[dt.date, PublisherDay, frozenset[str]]]:
                figures = await self.store.figure_series(name, a, b)
                none: frozenset[str] = frozenset()
                return [(d, tuple((f.base, f.quote, f.value) for f in fs), none) for d, fs in figures.items()]

            mine = await self._published_series.select(name, first, last, code, wanted, published)
            return SeriesJson(code, first, last, mine.rates_json(), (name,))
        code, wanted = await self._base_and_symbols(base, symbols)
        await self._refuse_before_opening(last)
        reference = self.source

        async def per_pivot(a: dt.date, b: dt.date) -> list[tuple[dt.date, PerPivot, frozenset[str]]]:
            return [
                (d, pack(values), names) for d, values, names in await self.store.series_days(reference, a, b)
            ]

        picked = await self._series.select(reference, first, last, code, wanted, per_pivot)
        sources = tuple(sorted(picked.contributors)) if reference == BLEND else (reference,)
        return SeriesJson(code, first, last, picked.rates_json(), sources)

    async def convert(
        self, from_currency: str, to_currency: str, amount: str, date: str, source: str = ""
    ) -> ConvertAnswer:
        publisher = await self._publisher(source)
        served = {c.code for c in publisher.currencies} if publisher is not None else await self.served()
        src = validation.currency("from", from_currency, served)
        dst = validation.currency("to", to_currency, served)
        try:
            value = money.parse_amount(amount)
        except money.DecimalFormatError as exc:
            raise InvalidArgument("amount", str(exc)) from exc
        if date:
            _, answer = await self.historical(date, src, [dst], source)
        else:
            answer = await self.latest(src, [dst], source)
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


def home_of(publisher: PublisherRange) -> str:
    """A publisher's default base: USD when it quotes USD, else its first currency."""
    codes = [c.code for c in publisher.currencies]
    return "USD" if "USD" in codes else codes[0]
