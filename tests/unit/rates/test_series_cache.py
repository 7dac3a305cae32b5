"""The columnar series cache: month chunks, one store read per missing span, invalidation,
the memory budget, max_age, and a read racing a write."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import orjson

from kurs_rates.series_cache import DEFAULT_BUDGET_BYTES, SeriesCache, month_of, month_span
from kurs_rates.series_days import PerPivot, pack, render_per_pivot, size_per_pivot

Rows = list[tuple[dt.date, PerPivot, frozenset[str]]]


class FakeStore:
    """Business days of 2023-2024: USD = 1.0 + day-of-year / 1000, GBP only on Mondays."""

    def __init__(self) -> None:
        self.reads: list[tuple[dt.date, dt.date]] = []
        self.usd_bump = 0
        self.gate: asyncio.Event | None = None

    async def load(self, start: dt.date, end: dt.date) -> Rows:
        self.reads.append((start, end))
        if self.gate is not None:
            await self.gate.wait()
        out: Rows = []
        day = start
        while day <= end:
            if day.weekday() < 5 and dt.date(2023, 1, 1) <= day <= dt.date(2024, 12, 31):
                values = {"USD": f"1.{day.timetuple().tm_yday + self.usd_bump:03d}"}
                if day.weekday() == 0:
                    values["GBP"] = "0.8"
                names = frozenset({"ecb", "boe"} if day.weekday() == 0 else {"ecb"})
                out.append((day, pack(values), names))
            day += dt.timedelta(days=1)
        return out


def cache(budget_bytes: int = DEFAULT_BUDGET_BYTES, max_age: float | None = None) -> SeriesCache[PerPivot]:
    return SeriesCache(render_per_pivot, size_per_pivot, budget_bytes=budget_bytes, max_age=max_age)


def days_of(rates_json: bytes) -> dict[str, dict[str, str]]:
    decoded: dict[str, dict[str, str]] = orjson.loads(rates_json)
    return decoded


async def select(
    c: SeriesCache[PerPivot],
    store: FakeStore,
    a: str,
    b: str,
    base: str,
    symbols: Sequence[str] | None = None,
) -> dict[str, dict[str, str]]:
    picked = await c.select(
        "blend", dt.date.fromisoformat(a), dt.date.fromisoformat(b), base, symbols, store.load
    )
    return days_of(picked.rates_json())


def test_month_arithmetic() -> None:
    assert month_span(month_of(dt.date(2024, 2, 10))) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert month_span(month_of(dt.date(2023, 12, 31))) == (dt.date(2023, 12, 1), dt.date(2023, 12, 31))


async def test_one_read_per_missing_span_and_exact_range() -> None:
    store, c = FakeStore(), cache()
    got = await select(c, store, "2023-01-04", "2023-03-14", "EUR")
    assert store.reads == [(dt.date(2023, 1, 1), dt.date(2023, 3, 31))]
    assert min(got) == "2023-01-04"
    assert max(got) == "2023-03-14"
    assert got["2023-01-04"] == {"USD": "1.004"}
    # A range inside the cached months reads nothing; one beyond reads only the new month.
    await select(c, store, "2023-02-01", "2023-03-31", "USD")
    await select(c, store, "2023-03-15", "2023-04-02", "USD")
    assert store.reads[1:] == [(dt.date(2023, 4, 1), dt.date(2023, 4, 30))]


async def test_days_without_the_base_are_left_out_and_contributors_cover_every_day() -> None:
    store, c = FakeStore(), cache()
    got = await select(c, store, "2023-01-02", "2023-01-13", "GBP")
    assert sorted(got) == ["2023-01-02", "2023-01-09"]  # the Mondays
    assert got["2023-01-02"] == {"EUR": "1.25", "USD": "1.2525"}  # codes sorted, money.rebase strings
    picked = await c.select("blend", dt.date(2023, 1, 3), dt.date(2023, 1, 6), "EUR", None, store.load)
    assert picked.contributors == {"ecb"}
    subset = await select(c, store, "2023-01-02", "2023-01-02", "USD", ["GBP"])
    assert subset == {"2023-01-02": {"GBP": "0.7984031936"}}


async def test_forget_drops_the_changed_months_only() -> None:
    store, c = FakeStore(), cache()
    await select(c, store, "2023-01-01", "2023-03-31", "USD")
    store.usd_bump = 1
    c.forget("blend", [dt.date(2023, 2, 14)])
    got = await select(c, store, "2023-01-31", "2023-02-01", "EUR")
    assert store.reads[-1] == (dt.date(2023, 2, 1), dt.date(2023, 2, 28))
    assert got == {"2023-01-31": {"USD": "1.031"}, "2023-02-01": {"USD": "1.033"}}
    c.forget_from("blend", dt.date(2023, 3, 1))
    await select(c, store, "2023-03-01", "2023-03-01", "EUR")
    assert store.reads[-1] == (dt.date(2023, 3, 1), dt.date(2023, 3, 31))


async def test_the_budget_evicts_the_least_recently_used_months() -> None:
    store, c = FakeStore(), cache(budget_bytes=20_000)
    for month in range(1, 13):
        await select(c, store, f"2023-{month:02d}-01", f"2023-{month:02d}-28", "USD")
        assert c.size <= 20_000
    reads = len(store.reads)
    await select(c, store, "2023-12-01", "2023-12-28", "USD")  # the newest is still held
    assert len(store.reads) == reads
    await select(c, store, "2023-01-01", "2023-01-28", "USD")  # the oldest was dropped
    assert len(store.reads) == reads + 1


async def test_max_age_reads_a_month_again() -> None:
    store, c = FakeStore(), cache(max_age=0.0)
    await select(c, store, "2023-01-01", "2023-01-31", "USD")
    await asyncio.sleep(0.01)
    await select(c, store, "2023-01-01", "2023-01-31", "USD")
    assert len(store.reads) == 2


async def test_a_read_racing_a_write_is_not_kept() -> None:
    store, c = FakeStore(), cache()
    store.gate = asyncio.Event()
    reading = asyncio.create_task(select(c, store, "2023-01-01", "2023-01-31", "EUR"))
    await asyncio.sleep(0)
    c.forget("blend", [dt.date(2023, 1, 10)])  # a write lands while the read is in flight
    store.gate.set()
    assert (await reading)["2023-01-03"] == {"USD": "1.003"}
    assert c.size == 0
    await select(c, store, "2023-01-01", "2023-01-31", "EUR")
    assert len(store.reads) == 2


async def test_concurrent_misses_read_the_store_once() -> None:
    store, c = FakeStore(), cache()
    store.gate = asyncio.Event()
    ranges = [("2023-01-01", "2023-12-31"), ("2023-01-02", "2024-01-01"), ("2023-02-01", "2023-06-30")]
    readers = [asyncio.create_task(select(c, store, a, b, "USD")) for a, b in ranges]
    await asyncio.sleep(0.01)
    store.gate.set()
    answers = await asyncio.gather(*readers)
    assert store.reads == [
        (dt.date(2023, 1, 1), dt.date(2023, 12, 31)),
        (dt.date(2024, 1, 1), dt.date(2024, 1, 31)),
    ]
    assert answers[0]["2023-03-01"] == answers[2]["2023-03-01"]
