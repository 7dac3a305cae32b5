"""The storage contract every backend (embedded SQLite, PostgreSQL) fulfils."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from kurs_rates.model import CurrencyRange, StoredRate, WriteResult


class RateStore(Protocol):
    async def open(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None: ...

    async def write(self, rates: Sequence[StoredRate]) -> WriteResult:
        """Store a batch atomically and idempotently.

        Reference rates are keyed on (source, day, currency), live ticks on
        (source, currency, observed_at). A row already stored with an equal value counts as
        unchanged; a different value for the same key is a publisher's correction (updated).
        """

    async def day_on_or_before(self, source: str, day: dt.date) -> dt.date | None:
        """The newest business day <= `day` that has reference rates from `source`."""

    async def first_day(self, source: str) -> dt.date | None: ...

    async def rates_on(self, source: str, day: dt.date) -> dict[str, str]:
        """Reference rates of `source` on exactly `day` (currency -> value per pivot)."""

    async def series(self, source: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
        """Reference rates for every publication day in [start, end], ascending."""

    async def latest_reference(self, source: str) -> list[StoredRate]:
        """Every rate of the newest reference day of `source`."""

    async def latest_live(self) -> list[StoredRate]:
        """The newest live tick per (currency), any source."""

    async def currency_ranges(self, source: str) -> list[CurrencyRange]: ...
