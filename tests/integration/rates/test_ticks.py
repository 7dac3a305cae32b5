"""Live tick history (kurs_rates.ticks): the store reads on both stores, and ListTicks through a
real rates server (ingested over IngestRates, answered over gRPC): exact strings for base EUR,
crosses seeded before the range for other bases, keyset paging across equal instants, retention."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_rates import server as rates_server
from kurs_rates import ticks as tick_module
from kurs_rates.model import Rate, RateKind, TickSpan
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.settings import RatesSettings
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore
from support.rates_replicas import accepted_rate

pytestmark = pytest.mark.integration

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TEN = Context(prec=10, rounding=ROUND_HALF_EVEN)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def tick(seconds: float, currency: str, value: str, source: str = "kraken") -> Rate:
    when = at(seconds)
    return Rate(source, RateKind.LIVE, currency, value, when.date(), when, (source,))


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RateStore]:
    opened: RateStore
    if request.param == "sqlite":
        opened = SqliteRateStore(tmp_path / "ticks.sqlite3")
    else:
        getfixture: Callable[[str], object] = request.getfixturevalue
        dsn = getfixture("pg_dsn")
        assert isinstance(dsn, str)
        opened = PostgresRateStore(dsn)
    await opened.open()
    yield opened
    await opened.close()


async def test_store_reads_ticks_in_order_pages_and_filters(store: RateStore) -> None:
    await store.write(
        [
            tick(0, "USD", "1.0500"),
            tick(0, "USD", "1.0501", "binance"),
            tick(1.5, "GBP", "0.8300"),
            tick(2, "USD", "1.0510"),
            tick(-10, "USD", "1.0400"),  # before the range
            tick(3600, "USD", "1.0600"),  # at the end: excluded
        ]
    )
    rows = await store.live_ticks(TickSpan(["USD", "GBP"], T0, at(3600)), None, 100)
    assert [(r.observed_at, r.source, r.currency, r.value) for r in rows] == [
        (at(0), "binance", "USD", "1.0501"),
        (at(0), "kraken", "USD", "1.0500"),
        (at(1.5), "kraken", "GBP", "0.8300"),
        (at(2), "kraken", "USD", "1.0510"),
    ]
    first = await store.live_ticks(TickSpan(["USD", "GBP"], T0, at(3600)), None, 1)
    key = (first[0].observed_at, first[0].source, first[0].currency)
    rest = await store.live_ticks(TickSpan(["USD", "GBP"], T0, at(3600)), key, 100)
    assert first + rest == rows
    only = await store.live_ticks(TickSpan(["USD"], T0, at(3600), "kraken"), None, 100)
    assert [r.value for r in only] == ["1.0500", "1.0510"]
    seed = await store.live_before("USD", T0, "")
    assert seed is not None
    assert seed.value == "1.0400"
    assert await store.live_before("USD", T0, "binance") is None


async def test_prune_keeps_each_source_and_currency_newest(store: RateStore) -> None:
    await store.write([tick(0, "USD", "1.05"), tick(10, "USD", "1.06"), tick(5, "GBP", "0.83")])
    removed = await store.prune_live(at(100))
    assert removed == 1  # USD's 1.05; USD's newest and GBP's only tick stay
    rows = await store.live_ticks(TickSpan(["USD", "GBP"], at(-1), at(100)), None, 100)
    assert [(r.currency, r.value) for r in rows] == [("GBP", "0.83"), ("USD", "1.06")]
    assert {r.currency for r in await store.latest_live()} == {"USD", "GBP"}


def _ts(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def _ingest(channel: grpc.aio.Channel, rows: list[tuple[float, str, str]]) -> None:
    stub = ingest_pb2_grpc.RatesIngestServiceStub(channel)
    rates = [accepted_rate(code, value, at(seconds), source="kraken") for seconds, code, value in rows]
    await stub.IngestRates(ingest_pb2.IngestRatesRequest(rates=rates))


async def _list(
    stub: rates_pb2_grpc.RatesServiceStub, base: str, symbols: list[str], start: float, end: float
) -> list[tuple[str, str, float]]:
    request = rates_pb2.ListTicksRequest(base=base, symbols=symbols, start=_ts(at(start)), end=_ts(at(end)))
    out = []
    async for reply in stub.ListTicks(request, timeout=10):
        assert reply.base == (base or "USD")
        for t in reply.ticks:
            out.append((t.currency, t.value, (t.observed_at.ToDatetime(UTC) - T0).total_seconds()))
    return out


@pytest.fixture
async def rates(tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    service = await rates_server.start(
        RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'rates.sqlite3'}")
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            yield channel
    finally:
        await service.stop(0)


async def test_list_ticks_exact_for_eur_and_crossed_for_another_base(
    rates: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tick_module, "PAGE", 2)  # keyset pages that split one instant
    monkeypatch.setattr(tick_module, "CHUNK", 3)  # and several messages
    await _ingest(rates, [(-60, "USD", "1.0400"), (-30, "GBP", "0.8200")])
    await _ingest(rates, [(0, "USD", "1.05000"), (0, "GBP", "0.8300")])  # one batch, one instant
    await _ingest(rates, [(10, "GBP", "0.8310"), (20, "USD", "1.0510"), (30, "GBP", "0.8320")])
    stub = rates_pb2_grpc.RatesServiceStub(rates)

    eur = await _list(stub, "EUR", ["USD", "GBP"], 0, 60)
    assert eur == [
        ("USD", "1.05000", 0),
        ("GBP", "0.8300", 0),
        ("GBP", "0.8310", 10),
        ("USD", "1.0510", 20),
        ("GBP", "0.8320", 30),
    ]

    def cross(quote: str, base: str) -> str:
        return format(TEN.divide(Decimal(quote), Decimal(base)).normalize(), "f")

    usd = await _list(stub, "USD", ["GBP", "EUR"], 0, 60)
    assert usd == [
        ("GBP", cross("0.8300", "1.05000"), 0),  # both legs moved at 0: one tick each
        ("EUR", cross("1", "1.05000"), 0),
        ("GBP", cross("0.8310", "1.05000"), 10),
        ("GBP", cross("0.8310", "1.0510"), 20),  # the base moved: GBP's cross with its newest tick
        ("EUR", cross("1", "1.0510"), 20),
        ("GBP", cross("0.8320", "1.0510"), 30),
    ]
    # a range starting after the base's last tick is seeded with it
    seeded = await _list(stub, "USD", ["GBP"], 25, 60)
    assert seeded == [("GBP", cross("0.8320", "1.0510"), 30)]
    assert await _list(stub, "EUR", ["JPY"], 0, 60) == []


@pytest.mark.parametrize(
    ("base", "symbols", "start", "end", "field"),
    [
        ("EUR", [], 0.0, 60.0, "symbols"),
        ("EUR", ["usd!"], 0.0, 60.0, "symbols"),
        ("USD", ["USD"], 0.0, 60.0, "symbols"),
        ("EUR", [f"X{i:02d}" for i in range(21)], 0.0, 60.0, "symbols"),
        ("EUR", ["USD"], 0.0, 0.0, "end"),
        ("EUR", ["USD"], 0.0, 32 * 86400.0, "end"),
        ("EUR", ["USD"], None, 60.0, "start"),
    ],
)
async def test_list_ticks_names_the_bad_field(
    rates: grpc.aio.Channel, base: str, symbols: list[str], start: float | None, end: float, field: str
) -> None:
    request = rates_pb2.ListTicksRequest(base=base, symbols=symbols, end=_ts(at(end)))
    if start is not None:
        request.start.CopyFrom(_ts(at(start)))
    stub = rates_pb2_grpc.RatesServiceStub(rates)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.ListTicks(request, timeout=10):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(f"{field}:")
