"""The storage contract: the same cases against SqliteRateStore and PostgresRateStore, same answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kurs_common.rate import Rate, RateKind
from kurs_rates.model import CurrencyRange, Figure, WriteResult
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore

pytestmark = pytest.mark.integration

UTC = dt.UTC
AT = dt.datetime(2025, 2, 3, 15, tzinfo=UTC)


def ref(
    day: str,
    currency: str,
    value: str,
    source: str = "ecb",
    at: str | None = None,
    sources: tuple[str, ...] = (),
) -> Rate:
    d = dt.date.fromisoformat(day)
    observed = dt.datetime.fromisoformat(at) if at else dt.datetime.combine(d, dt.time(15, 0), UTC)
    return Rate(source, RateKind.REFERENCE, currency, value, d, observed, sources or (source,))


def tick(at: str, currency: str, value: str, source: str = "replay", replay: bool = True) -> Rate:
    observed = dt.datetime.fromisoformat(at)
    return Rate(source, RateKind.LIVE, currency, value, observed.date(), observed, (source,), replay)


def counts(result: WriteResult) -> tuple[int, int, int]:
    return result.inserted, result.updated, result.unchanged


async def open_store(kind: str, tmp_path: Path, getfixture: Callable[[str], object]) -> RateStore:
    store: RateStore
    if kind == "sqlite":
        store = SqliteRateStore(tmp_path / "contract.sqlite3")
    else:
        dsn = getfixture("pg_dsn")
        assert isinstance(dsn, str)
        store = PostgresRateStore(dsn)
    await store.open()
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RateStore]:
    opened = await open_store(request.param, tmp_path, request.getfixturevalue)
    yield opened
    await opened.close()


async def test_empty_store_answers_nothing(store: RateStore) -> None:
    assert await store.day_on_or_before("ecb", dt.date(2025, 1, 1)) is None
    assert await store.first_day("ecb") is None
    assert await store.rates_on("ecb", dt.date(2025, 1, 1)) == {}
    assert await store.series("ecb", dt.date(2025, 1, 1), dt.date(2025, 12, 31)) == {}
    assert await store.latest_reference("ecb") == []
    assert await store.latest_live() == []
    assert await store.currency_ranges("ecb") == []
    assert counts(await store.write([])) == (0, 0, 0)


async def test_values_come_back_exactly_as_written(store: RateStore) -> None:
    figures = {"USD": "1.0830", "GBP": "0.83380", "JPY": "157.10", "ISK": "150", "XAU": ".5", "IDR": "17500."}
    result = await store.write([ref("2025-01-15", c, v) for c, v in figures.items()])
    assert counts(result) == (6, 0, 0)
    assert await store.rates_on("ecb", dt.date(2025, 1, 15)) == dict(sorted(figures.items()))
    latest = await store.latest_reference("ecb")
    assert {r.currency: r.value for r in latest} == figures


async def test_rewrite_is_unchanged_and_a_different_value_is_a_correction(store: RateStore) -> None:
    first = [ref("2025-01-15", "USD", "1.0830"), ref("2025-01-15", "GBP", "0.83380")]
    assert counts(await store.write(first)) == (2, 0, 0)
    assert counts(await store.write(first)) == (0, 0, 2)
    # Equal as decimals: unchanged, and the stored string stays the one first written.
    same = await store.write([ref("2025-01-15", "GBP", "0.8338", at="2025-01-15T16:00:00+00:00")])
    assert counts(same) == (0, 0, 1)
    assert same.changed == ()
    assert (await store.rates_on("ecb", dt.date(2025, 1, 15)))["GBP"] == "0.83380"
    # A different value: a correction, with the new observation time and sources.
    fix = ref("2025-01-15", "USD", "1.0831", at="2025-01-15T17:00:00+00:00", sources=("ecb", "fix"))
    result = await store.write([fix, ref("2025-01-16", "USD", "1.0900")])
    assert counts(result) == (1, 1, 0)
    assert result.changed == (fix, ref("2025-01-16", "USD", "1.0900"))
    assert await store.rates_on("ecb", dt.date(2025, 1, 15)) == {"GBP": "0.83380", "USD": "1.0831"}
    corrected = await store.latest_reference("ecb")
    # The newest figure of each currency: GBP, not published on the 16th, is carried with its own date.
    assert [(r.currency, r.value, r.day.isoformat()) for r in corrected] == [
        ("GBP", "0.83380", "2025-01-15"),
        ("USD", "1.0900", "2025-01-16"),
    ]
    series = await store.series("ecb", dt.date(2025, 1, 15), dt.date(2025, 1, 15))
    assert series == {dt.date(2025, 1, 15): {"GBP": "0.83380", "USD": "1.0831"}}


async def test_duplicates_within_one_batch(store: RateStore) -> None:
    await store.write([ref("2025-02-03", "CHF", "0.9400")])
    batch = [
        ref("2025-02-03", "CHF", "0.94"),  # equal to stored: unchanged
        ref("2025-02-03", "CHF", "0.9500"),  # in-batch correction: updated
        ref("2025-02-03", "CHF", "0.95"),  # equal to the previous: unchanged
        ref("2025-02-04", "CHF", "0.9600"),  # new: inserted
        ref("2025-02-04", "CHF", "0.9700"),  # corrected in the same batch: updated
    ]
    result = await store.write(batch)
    assert counts(result) == (1, 2, 2)
    assert result.changed == (batch[1], batch[3], batch[4])
    series = await store.series("ecb", dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert series == {dt.date(2025, 2, 3): {"CHF": "0.9500"}, dt.date(2025, 2, 4): {"CHF": "0.9700"}}


async def test_day_lookups_across_gaps_years_and_sources(store: RateStore) -> None:
    rows = [
        ref("1999-01-04", "USD", "1.1789"),
        ref("1999-12-30", "USD", "1.0046"),
        ref("2000-01-03", "USD", "1.0090"),
        ref("2000-01-03", "JPY", "102.75"),
        ref("2025-12-31", "USD", "1.1750"),
        ref("2026-01-02", "USD", "1.1720", source="other"),
    ]
    assert counts(await store.write(rows)) == (6, 0, 0)
    assert await store.day_on_or_before("ecb", dt.date(2000, 1, 2)) == dt.date(1999, 12, 30)
    assert await store.day_on_or_before("ecb", dt.date(2000, 1, 3)) == dt.date(2000, 1, 3)
    assert await store.day_on_or_before("ecb", dt.date(1999, 1, 3)) is None
    assert await store.day_on_or_before("ecb", dt.date(2030, 1, 1)) == dt.date(2025, 12, 31)
    assert await store.day_on_or_before("other", dt.date(2030, 1, 1)) == dt.date(2026, 1, 2)
    assert await store.first_day("ecb") == dt.date(1999, 1, 4)
    assert await store.first_day("other") == dt.date(2026, 1, 2)
    assert await store.rates_on("ecb", dt.date(2000, 1, 3)) == {"JPY": "102.75", "USD": "1.0090"}
    series = await store.series("ecb", dt.date(1999, 12, 1), dt.date(2000, 1, 31))
    assert list(series) == [dt.date(1999, 12, 30), dt.date(2000, 1, 3)]
    assert series[dt.date(2000, 1, 3)] == {"JPY": "102.75", "USD": "1.0090"}
    assert await store.currency_ranges("ecb") == [
        CurrencyRange("JPY", dt.date(2000, 1, 3), dt.date(2000, 1, 3)),
        CurrencyRange("USD", dt.date(1999, 1, 4), dt.date(2025, 12, 31)),
    ]
    latest = await store.latest_reference("ecb")
    assert latest == [ref("2025-12-31", "USD", "1.1750")]
    assert [r.day for r in await store.latest_reference("other")] == [dt.date(2026, 1, 2)]


async def test_live_ticks(store: RateStore) -> None:
    batch = [
        tick("2026-03-02T10:00:00+00:00", "USD", "1.0800"),
        tick("2026-03-02T10:00:01+00:00", "USD", "1.0801"),
        tick("2026-03-02T10:00:01+00:00", "USD", "1.0802", source="alpha"),  # same instant, other source
        tick("2026-03-02T09:00:00+00:00", "GBP", "0.8500"),
        tick("2026-03-02T10:00:00+00:00", "USD", "1.0800"),  # duplicate in the batch
    ]
    result = await store.write(batch)
    assert counts(result) == (4, 0, 1)
    assert result.changed == tuple(batch[:4])
    latest = {r.currency: r for r in await store.latest_live()}
    assert latest["USD"] == batch[2]  # newest instant; ties go to the smallest source id
    assert latest["GBP"] == batch[3]
    # A live tick is keyed on (source, currency, observed_at): a retry adds nothing, and a
    # different value for an existing key is not a correction for ticks (first one stays).
    again = await store.write([batch[0], tick("2026-03-02T10:00:01+00:00", "USD", "9.9", source="replay")])
    assert counts(again) == (0, 0, 2)
    assert {r.currency: r.value for r in await store.latest_live()} == {"GBP": "0.8500", "USD": "1.0802"}
    older = await store.write([tick("2026-03-01T10:00:00+00:00", "GBP", "0.8400")])
    assert counts(older) == (1, 0, 0)
    assert {r.currency: r.value for r in await store.latest_live()}["GBP"] == "0.8500"
    newer = tick("2027-01-04T08:00:00+00:00", "GBP", "0.8600", source="market", replay=False)
    await store.write([newer])
    assert {r.currency: r for r in await store.latest_live()}["GBP"] == newer


async def test_a_failing_batch_writes_nothing(store: RateStore) -> None:
    await store.write([ref("2025-03-03", "USD", "1.05")])
    bad = [
        ref("2025-03-04", "USD", "1.06"),
        tick("2025-03-04T10:00:00+00:00", "USD", "1.07"),
        ref("2025-03-03", "USD", "abc"),
    ]
    with pytest.raises((ValueError, ArithmeticError)):  # decimal.InvalidOperation is an ArithmeticError
        await store.write(bad)
    assert await store.day_on_or_before("ecb", dt.date(2025, 12, 31)) == dt.date(2025, 3, 3)
    assert await store.latest_live() == []
    assert await store.rates_on("ecb", dt.date(2025, 3, 3)) == {"USD": "1.05"}


async def test_real_history_gives_identical_answers(
    tmp_path: Path, request: pytest.FixtureRequest, ecb_history_rows: list[Rate]
) -> None:
    rows = [r for r in ecb_history_rows if r.day >= dt.date(2019, 1, 1)]
    sqlite = await open_store("sqlite", tmp_path, request.getfixturevalue)
    pg = await open_store("postgresql", tmp_path, request.getfixturevalue)
    try:
        for backend in (sqlite, pg):
            assert counts(await backend.write(rows)) == (len(rows), 0, 0)
        for backend in (sqlite, pg):
            assert counts(await backend.write(rows[:5000])) == (0, 0, 5000)
        span = (dt.date(2019, 1, 1), dt.date(2026, 12, 31))
        assert await sqlite.series("ecb", *span) == await pg.series("ecb", *span)
        assert await sqlite.currency_ranges("ecb") == await pg.currency_ranges("ecb")
        assert await sqlite.latest_reference("ecb") == await pg.latest_reference("ecb")
        for day in (dt.date(2019, 1, 1), dt.date(2020, 3, 15), dt.date(2024, 2, 29), dt.date(2030, 1, 1)):
            found = await sqlite.day_on_or_before("ecb", day)
            assert found == await pg.day_on_or_before("ecb", day)
            if found:
                assert await sqlite.rates_on("ecb", found) == await pg.rates_on("ecb", found)
    finally:
        await sqlite.close()
        await pg.close()


async def test_both_stores_classify_the_same_batches_identically(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """One classifier (kurs_rates.writes) for both: the same counts, the same changed rates in
    input order, the same rows stored (the last change of a key, flag included)."""
    gbp = Rate("boe", RateKind.REFERENCE, "USD", "1.2500", dt.date(2025, 2, 3), AT, ("boe",), base="GBP")
    before = [
        ref("2025-02-03", "CHF", "0.9400"),
        ref("2025-02-03", "USD", "1.0300", source="blend", sources=("boe", "ecb")),
        gbp,
        tick("2025-02-03T10:00:00+00:00", "USD", "1.031"),
    ]
    batch = [
        tick("2025-02-03T10:00:00+00:00", "USD", "1.031"),  # held already: unchanged
        ref("2025-02-03", "CHF", "0.94"),  # equal as a decimal: unchanged
        tick("2025-02-03T12:00:00+02:00", "USD", "1.032"),  # the same instant in UTC: unchanged
        ref("2025-02-03", "USD", "1.0310", source="blend", sources=("boe", "ecb")),  # updated
        dataclasses.replace(gbp, value="1.2600", flag="outlier"),  # a publisher's correction, flagged
        ref("2025-02-03", "CHF", "0.9500"),  # in-batch change: updated
        ref("2025-02-04", "CHF", "0.9600"),  # new: inserted
        tick("2025-02-03T10:00:01+00:00", "USD", "1.033"),  # new tick: inserted
        ref("2025-02-04", "CHF", "0.96"),  # equal to the running value: unchanged
        ref("2025-02-03", "CHF", "0.9400"),  # back to the stored value: updated (written)
        tick("2025-02-03T10:00:01+00:00", "USD", "1.034"),  # repeat within the batch: unchanged
    ]
    results = []
    stored = []
    for kind in ("sqlite", "postgresql"):
        backend = await open_store(kind, tmp_path, request.getfixturevalue)
        try:
            await backend.write(before)
            results.append(await backend.write(batch))
            stored.append(
                (
                    await backend.figures_on("ecb", dt.date(2025, 2, 3)),
                    await backend.figures_on("ecb", dt.date(2025, 2, 4)),
                    await backend.figures_on("blend", dt.date(2025, 2, 3)),
                    await backend.figures_on("boe", dt.date(2025, 2, 3)),
                    await backend.latest_live(),
                )
            )
        finally:
            await backend.close()
    sqlite, pg = results
    assert counts(sqlite) == counts(pg) == (2, 4, 5)
    assert sqlite.changed == pg.changed == (batch[3], batch[4], batch[5], batch[6], batch[7], batch[9])
    assert stored[0] == stored[1]
    assert stored[0][3] == [Figure("GBP", "USD", "1.2600", "outlier")]
