"""GetTimeSeriesJson (the columnar series cache) gives the very bytes of the uncached path.

The old path is GetTimeSeries -> views.timeseries_body -> orjson (what /rates/timeseries served
before); the new one is GetTimeSeriesJson -> series_body.timeseries_bytes. Both run through a
real gRPC server on loopback over the same store, on SQLite and PostgreSQL, on real ECB figures
(2022-11 .. 2024-02), a blended series with currencies the ECB does not publish (RUB, VND) and
days without USD, and two publishers' figures as published (boe per GBP, nbp as PLN per unit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import orjson
import pytest

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_gateway import series_body, views
from kurs_rates.book import LatestRates
from kurs_rates.ingest import Ingestor
from kurs_rates.model import BLEND, Rate, RateKind
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.queries import RateQueries
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore
from support.rates_replicas import serving_rates

pytestmark = pytest.mark.integration

FIRST, LAST = dt.date(2022, 11, 1), dt.date(2024, 2, 29)
FOUR = Decimal("0.0001")


def _q(value: Decimal) -> str:
    return str(value.quantize(FOUR, rounding=ROUND_HALF_EVEN))


def dataset(ecb: list[Rate]) -> list[Rate]:
    """The ECB's own rows, a blend built on them, and two publishers' figures as published."""
    ecb = [r for r in ecb if FIRST <= r.day <= LAST]
    by_day: dict[dt.date, dict[str, Rate]] = {}
    for r in ecb:
        by_day.setdefault(r.day, {})[r.currency] = r
    out: list[Rate] = list(ecb)
    for n, (_day, rates) in enumerate(sorted(by_day.items())):
        for code, r in rates.items():
            if code == "USD" and n % 17 == 5:
                continue  # the blend misses USD that day: a USD series leaves the day out
            sources = ("boe", "ecb") if code in ("GBP", "USD") and n % 3 == 0 else ("ecb",)
            out.append(dataclasses.replace(r, source=BLEND, sources=sources))
        usd = Decimal(rates["USD"].value)
        if n % 2 == 0:  # currencies only other publishers quote, some days only
            rub = usd * Decimal("91.5") + Decimal(n) / 100
            out.append(dataclasses.replace(rates["USD"], source=BLEND, currency="RUB", value=_q(rub)))
            out[-1] = dataclasses.replace(out[-1], sources=("cbr", "nbp"))
        if n % 5 != 1:
            vnd = usd * Decimal("24310") + n
            out.append(dataclasses.replace(rates["USD"], source=BLEND, currency="VND", value=_q(vnd)))
            out[-1] = dataclasses.replace(out[-1], sources=("sbv",))
        gbp = Decimal(rates["GBP"].value)
        if n % 11 != 4:  # boe: units per one GBP, its own holidays
            for code in ("USD", "JPY", "CHF"):
                value = _q(Decimal(rates[code].value) / gbp)
                flag = "stuck" if code == "CHF" and n % 13 == 0 else ""
                out.append(
                    dataclasses.replace(
                        rates[code], source="boe", base="GBP", value=value, sources=("boe",), flag=flag
                    )
                )
        pln = Decimal(rates["PLN"].value)
        if n % 7 != 3:  # nbp: PLN per one unit of each currency (the other orientation)
            for code in ("USD", "GBP", "CHF", "EUR"):
                per_eur = Decimal(1) if code == "EUR" else Decimal(rates[code].value)
                value = _q(pln / per_eur)
                out.append(
                    dataclasses.replace(
                        rates["PLN"], source="nbp", base=code, currency="PLN", value=value, sources=("nbp",)
                    )
                )
    return out


QUERIES: list[tuple[str, str, str, list[str], str]] = [
    ("2023-01-02", "2024-01-01", "USD", [], ""),  # the bench's shape: one year, all currencies
    ("2023-01-02", "2024-01-01", "EUR", [], ""),  # the published strings themselves
    ("2023-01-02", "2024-01-01", "VND", [], ""),  # a currency the ECB does not publish
    ("2023-01-03", "2024-01-02", "USD", [], ""),  # the next distinct range, from the cache
    ("2023-03-15", "2023-04-14", "RUB", [], ""),
    ("2022-10-01", "2022-11-30", "USD", [], ""),  # begins before the first day stored
    ("2024-02-20", "2024-03-31", "USD", [], ""),  # ends after the last day stored
    ("2023-06-01", "2023-08-31", "USD", ["EUR", "JPY", "VND", "RUB"], ""),
    ("2023-05-06", "2023-05-07", "USD", [], ""),  # a weekend: no day at all
    ("2023-01-02", "2024-01-01", "GBP", [], "boe"),  # boe's own base, its strings as published
    ("2023-01-02", "2024-01-01", "", [], "boe"),  # no base: USD, as boe quotes it
    ("2023-01-02", "2024-01-01", "USD", [], "boe"),
    ("2023-02-10", "2023-09-10", "JPY", ["USD", "GBP"], "boe"),
    ("2023-01-02", "2024-01-01", "PLN", [], "nbp"),
    ("2023-01-02", "2024-01-01", "USD", [], "nbp"),
    ("2023-04-01", "2023-10-31", "EUR", ["PLN", "CHF"], "nbp"),
]


async def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> RateStore:
    store: RateStore
    if kind == "sqlite":
        store = SqliteRateStore(tmp_path / "series.sqlite3")
    else:
        dsn = request.getfixturevalue("pg_dsn")
        assert isinstance(dsn, str)
        store = PostgresRateStore(dsn)
    await store.open()
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
async def mesh(
    request: pytest.FixtureRequest, tmp_path: Path, ecb_history_rows: list[Rate]
) -> AsyncIterator[tuple[rates_pb2_grpc.RatesServiceStub, Ingestor, RateQueries]]:
    store = await open_store(request.param, tmp_path, request)
    rows = dataset(ecb_history_rows)
    for i in range(0, len(rows), 20_000):
        await store.write(rows[i : i + 20_000])
    book = LatestRates(16)
    book.load(await store.latest_reference(BLEND), [])
    queries = RateQueries(store, book, BLEND)
    book.on_reference_change.append(queries.invalidate)
    ingestor = Ingestor(store, book, queries, BLEND, None)
    try:
        async with serving_rates(queries, book) as stub:
            yield stub, ingestor, queries
    finally:
        await store.close()


async def both(
    stub: rates_pb2_grpc.RatesServiceStub, start: str, end: str, base: str, symbols: list[str], source: str
) -> tuple[bytes, bytes]:
    old_request = rates_pb2.GetTimeSeriesRequest(
        start_date=start, end_date=end, base=base, symbols=symbols, source=source
    )
    new_request = rates_pb2.GetTimeSeriesJsonRequest(
        start_date=start, end_date=end, base=base, symbols=symbols, source=source
    )
    old = orjson.dumps(views.timeseries_body(await stub.GetTimeSeries(old_request)))
    new = series_body.timeseries_bytes(await stub.GetTimeSeriesJson(new_request))
    return old, new


async def test_the_same_bytes_as_the_uncached_path(
    mesh: tuple[rates_pb2_grpc.RatesServiceStub, Ingestor, RateQueries], ecb_history_rows: list[Rate]
) -> None:
    stub, _, queries = mesh
    for start, end, base, symbols, source in QUERIES:
        for attempt in ("cold", "cached"):
            old, new = await both(stub, start, end, base, symbols, source)
            assert new == old, (start, end, base, symbols, source, attempt)
    # The cases really cover what they claim.
    old, _ = await both(stub, "2023-01-02", "2024-01-01", "USD", [], "")
    body = orjson.loads(old)
    assert len(body["rates"]) > 230
    assert body["sources"] == ["boe", "cbr", "ecb", "nbp", "sbv"]
    assert "VND" in body["rates"]["2023-01-02"]
    assert body["rates"]["2023-01-02"]["EUR"]
    eur = orjson.loads((await both(stub, "2023-01-02", "2023-01-31", "EUR", [], ""))[0])
    assert eur["rates"]["2023-01-02"]["USD"] == "1.0683"  # the ECB's own string
    boe = orjson.loads((await both(stub, "2023-01-02", "2024-01-01", "GBP", [], "boe"))[0])
    assert boe["sources"] == ["boe"]
    gbp = Decimal(
        next(r.value for r in ecb_history_rows if r.day == dt.date(2023, 1, 2) and r.currency == "GBP")
    )
    usd = Decimal(
        next(r.value for r in ecb_history_rows if r.day == dt.date(2023, 1, 2) and r.currency == "USD")
    )
    assert boe["rates"]["2023-01-02"]["USD"] == _q(usd / gbp)  # boe's own string
    # One year read from the store once per month (13 months), never per request.
    assert queries._series.reads <= 6


async def test_a_correction_reaches_the_cached_series(
    mesh: tuple[rates_pb2_grpc.RatesServiceStub, Ingestor, RateQueries],
) -> None:
    stub, ingestor, _ = mesh
    none: list[str] = []
    blend = ("2023-01-02", "2024-01-01", "EUR", none, "")
    boe = ("2023-01-02", "2024-01-01", "GBP", none, "boe")
    before = [(await both(stub, *q))[1] for q in (blend, boe)]  # now cached
    day = dt.date(2023, 6, 15)
    observed = dt.datetime(2023, 6, 15, 16, tzinfo=dt.UTC)
    fixed = Rate(BLEND, RateKind.REFERENCE, "JPY", "150.01", day, observed, ("ecb",))
    await ingestor.ingest([fixed])
    await ingestor.ingest(
        [dataclasses.replace(fixed, source="boe", base="GBP", value="175.5", sources=("boe",))]
    )
    for query, cached in zip((blend, boe), before, strict=True):
        old, new = await both(stub, *query)
        assert new == old
        assert new != cached
        day_rates = orjson.loads(new)["rates"]["2023-06-15"]
        assert day_rates["JPY"] == ("150.01" if query is blend else "175.5")
