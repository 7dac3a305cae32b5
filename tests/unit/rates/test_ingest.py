"""Ingestor: durable before published, idempotent retries, refusals that publish nothing.

The store is the real embedded one (a SQLite file under tmp_path); failures are injected by a
subclass that raises where the real store would (StoreUnavailable, a timeout, a ValueError).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from kurs_common.errors import InvalidArgument
from kurs_rates.book import LatestRates
from kurs_rates.ingest import Ingestor
from kurs_rates.model import BLEND, Rate, RateKind, StoreUnavailable, WriteResult
from kurs_rates.queries import RateQueries
from kurs_rates.sqlite_store import SqliteRateStore


class FlakyStore(SqliteRateStore):
    """The embedded store, with the next write or reference read failing on demand."""

    write_error: BaseException | None = None
    read_error: BaseException | None = None

    async def write(self, rates: Sequence[Rate]) -> WriteResult:
        if self.write_error is not None:
            raise self.write_error
        return await super().write(rates)

    async def latest_reference(self, source: str) -> list[Rate]:
        if self.read_error is not None:
            raise self.read_error
        return await super().latest_reference(source)


@dataclass
class Rig:
    store: FlakyStore
    book: LatestRates
    ingestor: Ingestor


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = FlakyStore(tmp_path / "rates.sqlite3")
    await store.open()
    book = LatestRates()
    ingestor = Ingestor(store, book, RateQueries(store, book, BLEND), BLEND)
    try:
        yield Rig(store, book, ingestor)
    finally:
        await store.close()


def fixing(day: str, **values: str) -> list[Rate]:
    d = dt.date.fromisoformat(day)
    at = dt.datetime.combine(d, dt.time(15), dt.UTC)
    return [Rate(BLEND, RateKind.REFERENCE, c, v, d, at, ("ecb",)) for c, v in values.items()]


def tick(currency: str, value: str, second: int) -> Rate:
    at = dt.datetime(2026, 11, 2, 16, 0, second, tzinfo=dt.UTC)
    return Rate("kraken", RateKind.LIVE, currency, value, at.date(), at, ("kraken",))


def values(rates: dict[str, Rate]) -> dict[str, str]:
    return {code: r.value for code, r in rates.items()}


async def test_a_stored_batch_is_published_and_a_retry_adds_nothing(rig: Rig) -> None:
    first = await rig.ingestor.ingest(fixing("2026-11-02", USD="1.16", GBP="0.87"))
    assert (first.inserted, first.updated, first.unchanged, first.buffered) == (2, 0, 0, 0)
    assert first.sequence == rig.book.sequence == 1
    assert values(rig.book.reference) == {"USD": "1.16", "GBP": "0.87"}

    again = await rig.ingestor.ingest(fixing("2026-11-02", USD="1.16", GBP="0.87"))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert again.sequence == 1  # nothing changed: no new change set

    corrected = await rig.ingestor.ingest(fixing("2026-11-02", USD="1.17"))
    assert (corrected.inserted, corrected.updated, corrected.unchanged) == (0, 1, 0)
    assert corrected.sequence == 2
    assert values(rig.book.reference) == {"USD": "1.17", "GBP": "0.87"}


async def test_live_ticks_are_published_without_a_reference_read(rig: Rig) -> None:
    rig.store.read_error = AssertionError("a batch of ticks must not re-read the reference set")
    outcome = await rig.ingestor.ingest([tick("BTC", "97012.3", 1), tick("ETH", "3101.5", 1)])
    assert outcome.inserted == 2
    assert values(rig.book.live) == {"BTC": "97012.3", "ETH": "3101.5"}
    assert rig.book.reference == {}


async def test_an_older_day_does_not_replace_the_latest_reference(rig: Rig) -> None:
    await rig.ingestor.ingest(fixing("2026-11-03", USD="1.16"))
    late = await rig.ingestor.ingest(fixing("2026-11-02", USD="1.15"))
    assert late.inserted == 1
    assert late.sequence == 1
    assert rig.book.reference_day == dt.date(2026, 11, 3)
    assert values(rig.book.reference) == {"USD": "1.16"}


@pytest.mark.parametrize("error", [StoreUnavailable("database is locked"), TimeoutError("statement timeout")])
async def test_a_store_that_cannot_take_the_batch_refuses_it_and_publishes_nothing(
    rig: Rig, error: BaseException
) -> None:
    await rig.ingestor.ingest(fixing("2026-11-02", USD="1.16"))
    rig.store.write_error = error
    with pytest.raises(StoreUnavailable, match="batch not stored, retry it"):
        await rig.ingestor.ingest(fixing("2026-11-03", USD="1.17"))
    assert (rig.ingestor.store_healthy, rig.book.sequence) == (False, 1)
    assert values(rig.book.reference) == {"USD": "1.16"}

    rig.store.write_error = None  # the caller retries the same batch once the store is back
    retried = await rig.ingestor.ingest(fixing("2026-11-03", USD="1.17"))
    assert (retried.inserted, retried.sequence, rig.ingestor.store_healthy) == (1, 2, True)
    assert values(rig.book.reference) == {"USD": "1.17"}


async def test_a_batch_the_store_finds_invalid_is_an_invalid_argument(rig: Rig) -> None:
    rig.store.write_error = ValueError("value '1,16' is not a decimal")
    with pytest.raises(InvalidArgument) as caught:
        await rig.ingestor.ingest(fixing("2026-11-02", USD="1,16"))
    assert caught.value.field == "rates"
    assert rig.ingestor.store_healthy  # a bad batch says nothing about the store
    assert rig.book.sequence == 0


async def test_when_the_reference_cannot_be_reread_the_batch_itself_is_merged_in(rig: Rig) -> None:
    await rig.ingestor.ingest(fixing("2026-11-02", USD="1.16", GBP="0.87"))
    rig.store.read_error = StoreUnavailable("connection lost after the commit")
    outcome = await rig.ingestor.ingest(fixing("2026-11-03", USD="1.17"))
    assert (outcome.inserted, outcome.sequence) == (1, 2)
    # The committed figure is served at once; the currencies it did not carry keep their figure.
    assert {c: (r.value, r.day.isoformat()) for c, r in rig.book.reference.items()} == {
        "USD": ("1.17", "2026-11-03"),
        "GBP": ("0.87", "2026-11-02"),
    }


async def test_an_empty_batch_answers_the_current_sequence(rig: Rig) -> None:
    await rig.ingestor.ingest(fixing("2026-11-02", USD="1.16"))
    rig.store.write_error = AssertionError("an empty batch must not reach the store")
    outcome = await rig.ingestor.ingest([])
    assert (outcome.inserted, outcome.updated, outcome.unchanged, outcome.sequence) == (0, 0, 0, 1)
