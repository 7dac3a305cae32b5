"""The storage contract every backend (embedded SQLite, PostgreSQL) fulfils."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from kurs_rates.model import CurrencyRange, Figure, PublisherRange, Rate, TickKey, TickSpan, WriteResult


class RateStore(Protocol):
    async def open(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None: ...

    async def reachable(self) -> bool | None:
        """For the health loop: whether a remote backend answers a trivial query now (False
        instead of raising); None where the answer says nothing (an embedded file: only its
        writes tell whether it is healthy)."""

    async def write(self, rates: Sequence[Rate]) -> WriteResult:
        """Store a batch atomically and idempotently.

        Reference rates are keyed on (source, day, base, currency), live ticks on
        (source, currency, observed_at). A row already stored with an equal value counts as
        unchanged; a different value for the same key is a publisher's correction (updated).
        Every backend classifies with kurs_rates.writes (plan_batch, classify): one set of rules.
        """

    async def day_on_or_before(self, source: str, day: dt.date) -> dt.date | None:
        """The newest business day <= `day` that has reference rates from `source`."""

    async def first_day(self, source: str) -> dt.date | None: ...

    async def rates_on(self, source: str, day: dt.date) -> dict[str, str]:
        """Reference rates of `source` on exactly `day` quoted per the pivot (currency -> value)."""

    async def series(self, source: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
        """Reference rates for every publication day in [start, end], ascending."""

    async def series_days(
        self, source: str, start: dt.date, end: dt.date
    ) -> list[tuple[dt.date, dict[str, str] | None, frozenset[str]]]:
        """`series` and `contributors` in one read: per day with rows, ascending, its figures per
        one pivot (None when it has none) and every source named as a contributor of its rows."""

    async def latest_reference(self, source: str) -> list[Rate]:
        """`as_of(source, its newest day)`: the one definition of "the latest fixings"."""

    async def as_of(self, source: str, day: dt.date) -> list[Rate]:
        """Each (base, currency)'s newest reference figure of `source` in [day - CARRY_DAYS, day]."""

    async def figures_on(self, source: str, day: dt.date) -> list[Figure]:
        """Every figure `source` published for exactly `day`, in the base it published it."""

    async def figure_series(self, source: str, start: dt.date, end: dt.date) -> dict[dt.date, list[Figure]]:
        """figures_on for every publication day in [start, end], ascending."""

    async def contributors(self, source: str, start: dt.date, end: dt.date) -> tuple[str, ...]:
        """Every source id named as a contributor of `source`'s rows in [start, end]."""

    async def publishers(self) -> list[PublisherRange]:
        """Every stored source with the currencies it quotes (in any position) and their dates."""

    async def latest_live(self) -> list[Rate]:
        """The newest live tick per (currency), any source."""

    async def live_ticks(self, span: TickSpan, after: TickKey | None, limit: int) -> list[Rate]:
        """Live ticks of `span`, ordered (observed_at, source, currency), strictly after the key
        `after`, at most `limit`."""

    async def live_before(self, currency: str, at: dt.datetime, source: str) -> Rate | None:
        """The newest live tick of `currency` observed before `at` (only `source`'s when given)."""

    async def prune_live(self, before: dt.datetime) -> int:
        """Delete live ticks observed before `before` except each (source, currency)'s newest."""

    async def currency_ranges(self, source: str) -> list[CurrencyRange]: ...
