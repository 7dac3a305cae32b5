"""A publisher's latest answer (`source=`) gives each figure its own date, over real gRPC, on both
stores: its figures may be of different days (each its newest of the last CARRY_DAYS days)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common.rate import Rate, RateKind
from kurs_rates.book import LatestRates
from kurs_rates.model import BLEND
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.queries import RateQueries
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore
from support.rates_replicas import serving_rates

pytestmark = pytest.mark.integration

MON, TUE = dt.date(2025, 1, 13), dt.date(2025, 1, 14)


def boe(currency: str, value: str, day: dt.date) -> Rate:
    at = dt.datetime.combine(day, dt.time(15, 30), dt.UTC)
    return Rate("boe", RateKind.REFERENCE, currency, value, day, at, ("boe",), base="GBP")


@pytest.fixture(params=["sqlite", "postgresql"])
async def stub(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[rates_pb2_grpc.RatesServiceStub]:
    store: RateStore
    if request.param == "sqlite":
        store = SqliteRateStore(tmp_path / "dates.sqlite3")
    else:
        store = PostgresRateStore(request.getfixturevalue("pg_dsn"))
    await store.open()
    # Tuesday's table lacks JPY (a holiday of its desk, say): Monday's JPY is its latest.
    await store.write([boe("USD", "1.2210", MON), boe("EUR", "1.1870", MON), boe("JPY", "191.30", MON)])
    await store.write([boe("USD", "1.2250", TUE), boe("EUR", "1.1890", TUE)])
    book = LatestRates(16)
    queries = RateQueries(store, book, BLEND)
    try:
        async with serving_rates(queries, book) as stub:
            yield stub
    finally:
        await store.close()


async def test_each_figure_of_a_publishers_latest_carries_its_own_date(
    stub: rates_pb2_grpc.RatesServiceStub,
) -> None:
    own = await stub.GetLatestRates(rates_pb2.GetLatestRatesRequest(base="GBP", source="boe"))
    assert own.date == TUE.isoformat()  # the newest among them, as before
    assert {r.currency: (r.value, r.date) for r in own.rates} == {
        "EUR": ("1.1890", "2025-01-14"),
        "JPY": ("191.30", "2025-01-13"),
        "USD": ("1.2250", "2025-01-14"),
    }
    assert not any(r.HasField("observed_at") for r in own.rates)  # answers, not observations
    # Another base: a cross of two figures is dated by the newer of the two.
    usd = await stub.GetLatestRates(rates_pb2.GetLatestRatesRequest(base="USD", source="boe"))
    assert {r.currency: r.date for r in usd.rates} == {
        "EUR": "2025-01-14",
        "GBP": "2025-01-14",
        "JPY": "2025-01-14",
    }


async def test_a_past_day_is_one_date_for_every_figure(stub: rates_pb2_grpc.RatesServiceStub) -> None:
    reply = await stub.GetHistoricalRates(
        rates_pb2.GetHistoricalRatesRequest(date="2025-01-13", base="GBP", source="boe")
    )
    assert {r.date for r in reply.rates} == {"2025-01-13"}
