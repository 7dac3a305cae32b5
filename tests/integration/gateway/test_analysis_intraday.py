"""/analysis/ohlc with 1m/5m/15m/1h through the real rates service (ticks ingested over
IngestRates, read back over ListTicks) and the real gateway: bars checked against an independent
computation from the ticks sent; bad input is a named 400, no tick a 404."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from conftest import ingest_fixing, serve_gateway
from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from kurs_rates import server as rates_server
from kurs_rates.settings import RatesSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

DAY = "2026-11-30"
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
TEN = Context(prec=10, rounding=ROUND_HALF_EVEN)
# (seconds after 12:00Z, currency, units per EUR): two exchanges, equal instants, gaps of minutes
TICKS: list[tuple[float, str, str, str]] = [
    (-13 * 3600, "USD", "1.0400", "kraken"),  # the day before: seeds the USD cross
    (5, "USD", "1.05000", "kraken"),
    (5, "GBP", "0.8300", "kraken"),
    (20, "USD", "1.0512", "binance"),
    (40, "GBP", "0.82995", "kraken"),
    (59, "USD", "1.0498", "kraken"),
    (61, "USD", "1.0499", "binance"),
    (75, "GBP", "0.8301", "binance"),
    (400, "USD", "1.0530", "kraken"),
    (3700, "GBP", "0.8310", "kraken"),
]


def in_day(seconds: float) -> bool:
    return (T0 + dt.timedelta(seconds=seconds)).date().isoformat() == DAY


def _ts(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    data = tmp_path_factory.mktemp("intraday")
    rates = await rates_server.start(
        RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{Path(data) / 'rates.sqlite3'}")
    )
    try:
        await ingest_fixing(rates.port, "2026-11-27", {"USD": "1.04", "GBP": "0.83", "JPY": "160"})
        async with grpc.aio.insecure_channel(f"127.0.0.1:{rates.port}") as channel:
            stub = ingest_pb2_grpc.RatesIngestServiceStub(channel)
            for seconds, code, value, source in TICKS:
                when = T0 + dt.timedelta(seconds=seconds)
                await stub.IngestRates(
                    ingest_pb2.IngestRatesRequest(
                        rates=[
                            ingest_pb2.AcceptedRate(
                                source=source,
                                kind=common_pb2.OBSERVATION_KIND_LIVE,
                                base="EUR",
                                currency=code,
                                value=value,
                                date=when.date().isoformat(),
                                observed_at=_ts(when),
                            )
                        ]
                    )
                )
        async with (
            serve_gateway(rates.port, 0) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as c,
        ):
            yield c
    finally:
        await rates.stop(0)


def expected_bars(points: list[tuple[float, str]], seconds: int) -> list[tuple[str, str, str, str, str, int]]:
    """(period start, open, high, low, close, count), computed with Fractions and plain loops."""
    groups: dict[int, list[tuple[float, str]]] = {}
    for offset, value in sorted(points, key=lambda p: p[0]):
        moment = T0 + dt.timedelta(seconds=offset)
        groups.setdefault(int(moment.timestamp()) // seconds, []).append((offset, value))
    out = []
    for key in sorted(groups):
        values = [v for _, v in groups[key]]
        start = dt.datetime.fromtimestamp(key * seconds, dt.UTC).isoformat().replace("+00:00", "Z")
        high = max(values, key=Fraction)
        low = min(values, key=Fraction)
        out.append((start, values[0], high, low, values[-1], len(values)))
    return out


def got_bars(body: dict[str, Any], code: str) -> list[tuple[str, str, str, str, str, int]]:
    return [
        (b["period_start"], b["open"], b["high"], b["low"], b["close"], b["count"])
        for b in body["rates"][code]
    ]


@pytest.mark.parametrize(("interval", "seconds"), [("1m", 60), ("5m", 300), ("15m", 900), ("1h", 3600)])
async def test_eur_bars_are_the_stored_tick_strings(
    client: httpx.AsyncClient, interval: str, seconds: int
) -> None:
    reply = await client.get(
        "/analysis/ohlc",
        params={
            "start_date": DAY,
            "end_date": DAY,
            "base": "EUR",
            "symbols": "USD,GBP",
            "interval": interval,
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["base"], body["interval"], body["sources"]) == ("EUR", interval, ["binance", "kraken"])
    for code in ("USD", "GBP"):
        points = [(s, v) for s, c, v, _ in TICKS if c == code and in_day(s)]
        assert got_bars(body, code) == expected_bars(points, seconds)


def cross_points(code: str) -> list[tuple[float, str]]:
    """Units of `code` per USD at every instant where either side ticked (each side's newest)."""
    newest: dict[str, str] = {}
    for seconds, c, value, _ in TICKS:
        if not in_day(seconds):
            newest[c] = value
    out: list[tuple[float, str]] = []
    instants = sorted({s for s, *_ in TICKS if in_day(s)})
    for instant in instants:
        moved = {c for s, c, _, _ in TICKS if s == instant}
        for s, c, value, _ in TICKS:
            if s == instant:
                newest[c] = value
        if (code in moved or "USD" in moved) and code in newest and "USD" in newest:
            cross = TEN.divide(Decimal(newest[code]), Decimal(newest["USD"])).normalize()
            out.append((instant, format(cross, "f")))
    return out


async def test_usd_bars_cross_each_sides_newest_tick(client: httpx.AsyncClient) -> None:
    reply = await client.get(
        "/analysis/ohlc",
        params={"start_date": DAY, "end_date": DAY, "base": "USD", "symbols": "GBP", "interval": "1m"},
    )
    assert reply.status_code == 200, reply.text
    assert got_bars(reply.json(), "GBP") == expected_bars(cross_points("GBP"), 60)


async def test_a_currency_without_ticks_is_missing_and_no_tick_at_all_is_404(
    client: httpx.AsyncClient,
) -> None:
    params = {"start_date": DAY, "end_date": DAY, "base": "EUR", "interval": "5m"}
    reply = await client.get("/analysis/ohlc", params={**params, "symbols": "USD,JPY"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["missing"] == ["JPY"]
    reply = await client.get("/analysis/ohlc", params={**params, "symbols": "JPY"})
    assert reply.status_code == 404, reply.text
    assert reply.json()["invalid_params"][0]["name"] == "start_date"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"interval": "1m"}, "symbols"),
        ({"interval": "2m", "symbols": "USD"}, "interval"),
        (
            {"interval": "1m", "symbols": "USD", "end_date": "2026-12-01", "start_date": "2026-10-01"},
            "end_date",
        ),
        ({"interval": "1m", "symbols": "EUR"}, "symbols"),
        ({"interval": "1m", "symbols": ",".join(f"X{i:02d}" for i in range(21))}, "symbols"),
    ],
)
async def test_bad_intraday_input_is_a_named_400(
    client: httpx.AsyncClient, params: dict[str, str], name: str
) -> None:
    query = {"start_date": DAY, "end_date": DAY, "base": "EUR", **params}
    reply = await client.get("/analysis/ohlc", params=query)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["invalid_params"][0]["name"] == name, reply.json()


async def test_graphql_intraday_bars_are_the_rest_bars(client: httpx.AsyncClient) -> None:
    query = f"""{{ ohlc(startDate: "{DAY}", endDate: "{DAY}", base: "USD", symbols: ["GBP"],
                        interval: "1m") {{
      base interval sources
      rates {{ currency bars {{ periodStart open high low close count firstAt lastAt }} }}
    }} }}"""
    reply = await client.post("/graphql", json={"query": query})
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]["ohlc"]
    (gbp,) = data["rates"]
    assert [
        (b["periodStart"], b["open"], b["high"], b["low"], b["close"], b["count"]) for b in gbp["bars"]
    ] == (expected_bars(cross_points("GBP"), 60))
    assert (data["base"], data["interval"]) == ("USD", "1m")
