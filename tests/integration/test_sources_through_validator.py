"""Every provider fixture, fetched and parsed by its real feed, goes through the real validator
into the real rates store and out of the real gateway: each publisher's figures come back
exactly as published (`source=`), and the blended series serves every currency any of them
publishes, each blended figure being its contributor's own arithmetic."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from conftest import serve_gateway
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_collector import server as collector_server
from kurs_collector.config import SourceConfig
from kurs_collector.settings import CollectorSettings
from kurs_collector.sources import make_feed
from kurs_collector.state import StateStore
from kurs_common.currencies import lookup
from kurs_common.observation import LIVE, Observation
from kurs_common.quotes import home_currency
from kurs_common.series import CARRY_DAYS
from kurs_rates.server import RatesServer
from kurs_validator.server import ValidatorServer
from support.fake_exchanges import FakeHttpServer, FakeResponse, drain

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)  # market polls are stamped with the poll instant

# adapter, {path: fixture}, options, the feed's clock. Central banks first, on the recorded
# responses where one exists (tests/fixtures/sources/*/README.md says which are recordings).
BANKS: list[tuple[str, dict[str, str], dict[str, Any], dt.datetime]] = [
    (
        "ecb-daily",
        {"/stats/eurofxref/eurofxref-daily.xml": "ecb/eurofxref-daily-2016-01-29.xml"},
        {},
        dt.datetime(2016, 2, 1, tzinfo=UTC),
    ),
    (
        "ecb-90d",
        {"/stats/eurofxref/eurofxref-hist-90d.xml": "ecb/eurofxref-hist-90d-2017-03-03.xml"},
        {},
        dt.datetime(2017, 3, 6, tzinfo=UTC),
    ),
    (
        "nbp-a",
        {"/api/exchangerates/tables/A/": "nbp/table-a-2022-05-13.json"},
        {},
        dt.datetime(2022, 5, 13, 13, tzinfo=UTC),
    ),
    (
        "nbp-b",
        {"/api/exchangerates/tables/B/": "nbp/table-b-2022-05-11-full.json"},
        {},
        dt.datetime(2022, 5, 13, 13, tzinfo=UTC),
    ),
    (
        "rba",
        {"/statistics/tables/csv/f11.1-data.csv": "rba/f11.1-data.csv"},
        {},
        dt.datetime(2023, 1, 12, 12, tzinfo=UTC),
    ),
    (
        "boc",
        {"/valet/observations/group/FX_RATES_DAILY/json": "boc/valet-fx-2024-12-30.json"},
        {},
        dt.datetime(2025, 1, 6, tzinfo=UTC),
    ),
    (
        "boe",
        {"/boeapps/database/_iadb-fromshowcolumns.asp": "boe/iadb.csv"},
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    ("fed-h10", {"/datadownload/Output.aspx": "fed/h10.csv"}, {}, dt.datetime(2025, 1, 20, tzinfo=UTC)),
    (
        "cnb",
        {
            "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
            "central-bank-exchange-rate-fixing/daily.txt": "cnb/daily.txt"
        },
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    (
        "nbp-a",
        {"/api/exchangerates/tables/A/": "nbp/table-a.json"},
        {},
        dt.datetime(2026, 3, 4, 12, tzinfo=UTC),
    ),
    (
        "cnb-api",
        {"/cnbapi/exrates/daily": "cnb/api-daily-2026-03-16.json"},
        {},
        dt.datetime(2026, 3, 16, 14, tzinfo=UTC),
    ),
    (
        "norges",
        {"/api/data/EXR/B.EUR+USD+JPY+SEK.NOK.SP": "norges/exr.csv"},
        {"currencies": ["EUR", "USD", "JPY", "SEK"]},
        dt.datetime(2026, 3, 25, 12, tzinfo=UTC),
    ),
    ("cbr", {"/scripts/XML_daily.asp": "cbr/XML_daily.xml"}, {}, dt.datetime(2026, 4, 25, 6, tzinfo=UTC)),
]
MARKETS: list[tuple[str, dict[str, str], dict[str, Any], dt.datetime]] = [
    ("kraken", {"/0/public/Ticker": "kraken/ticker.json"}, {}, NOW),
    (
        "coinbase",
        {
            "/products/BTC-USD/ticker": "coinbase/ticker-BTC-USD.json",
            "/products/EUR-USD/ticker": "coinbase/ticker-EUR-USD.json",
        },
        {"pairs": ["EUR/USD", "BTC/USD"]},
        NOW,
    ),
    ("binance", {"/api/v3/ticker/bookTicker": "binance/bookTicker.json"}, {}, NOW),
    (
        "bitstamp",
        {
            "/api/v2/ticker/btcusd/": "bitstamp/ticker-btcusd.json",
            "/api/v2/ticker/eurusd/": "bitstamp/ticker-eurusd.json",
        },
        {"pairs": ["BTC/USD", "EUR/USD"]},
        NOW,
    ),
]


CASES = [*BANKS, *MARKETS]
IDS = [f"{c[0]}-{c[3].date()}" for c in CASES]
# A judgement the validator may make on a real figure: the figure stays stored under its publisher.
JUDGEMENTS = {"outlier", "jump", "inverted", "decimal_shift", "peg_break", "stuck", "no_pivot_cross"}


@pytest.fixture
async def provider() -> AsyncIterator[FakeHttpServer]:
    async with FakeHttpServer() as server:
        yield server


async def collect(
    provider: FakeHttpServer, adapter: str, routes: dict[str, str], options: dict[str, Any], now: dt.datetime
) -> tuple[str, list[list[Observation]]]:
    """Serve the fixtures, run the real feed on them; (its source id, its batches)."""
    for path, fixture in routes.items():
        provider.route(path, FakeResponse(body=(FIXTURES / fixture).read_bytes()))
    config = SourceConfig.model_validate(
        {
            "id": adapter,
            "adapter": adapter,
            "enabled": True,
            "base_url": provider.url,
            "retries": 1,
            **options,
        }
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        feed: Any = make_feed(config, client, StateStore(None))
        feed.ctx.clock = lambda: now
        batches = [list(b) for b in await drain(feed)]
    return str(feed.source), batches


async def submit(port: int, batches: list[list[Observation]]) -> tuple[int, list[tuple[Observation, str]]]:
    """Submit every batch to the validator; (accepted, [(observation, rejection reason)])."""
    accepted = 0
    rejected: list[tuple[Observation, str]] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = validator_pb2_grpc.ValidatorServiceStub(channel)
        for batch in batches:
            reply = await stub.SubmitObservations(
                validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in batch])
            )
            accepted += reply.accepted
            rejected += [(batch[r.index], r.code) for r in reply.rejections]
    return accepted, rejected


@pytest.mark.parametrize(("adapter", "routes", "options", "now"), CASES, ids=IDS)
async def test_fixture_is_accepted_end_to_end(
    adapter: str,
    routes: dict[str, str],
    options: dict[str, Any],
    now: dt.datetime,
    provider: FakeHttpServer,
    rates_service: RatesServer,
    validator_service: ValidatorServer,
) -> None:
    source, batches = await collect(provider, adapter, routes, options, now)
    observations = [o for batch in batches for o in batch]
    assert observations, "the fixture produced no observations"
    if adapter == "binance":
        # Binance has no USD market: its USDT figures are compared through the live EUR/USD
        # consensus of the other exchanges, here one Kraken tick of the same instant.
        tick = Observation("kraken", "kraken", LIVE, "EUR", "USD", "1.0316", now.date().isoformat(), now)
        assert (await submit(validator_service.port, [[tick]]))[0] == 1
    accepted, rejected = await submit(validator_service.port, batches)
    assert {reason for _, reason in rejected} <= JUDGEMENTS, rejected
    assert accepted + len(rejected) == len(observations)
    if observations[0].kind == LIVE:
        assert rejected == []
        ticks = {r.currency: r for r in await rates_service.store.latest_live()}
        direct = {o.base for o in observations if o.quote == "EUR"}  # quoted per EUR: no cross needed
        assert {o.quote for o in observations if o.base == "EUR"} <= set(ticks)
        for obs in observations:
            if obs.base == "EUR":
                assert ticks[obs.quote].value == obs.value  # a mid per EUR, as computed by the feed
            elif obs.quote in ("USD", "USDT") and obs.quote in ticks and obs.base not in direct:
                expected = Decimal(ticks[obs.quote].value) / Decimal(obs.value)  # X per EUR via EUR/USD(T)
                assert abs(Decimal(ticks[obs.base].value) / expected - 1) < Decimal("1e-9"), obs
        return
    store = rates_service.store
    flagged = {(o.day, o.base, o.quote): reason for o, reason in rejected}
    for day in sorted({o.day for o in observations}):
        published = [o for o in observations if o.day == day]
        # Never dropped: every figure is stored under its publisher, digit for digit, judged
        # ones with the reason that kept them out of the blend.
        stored = {(f.base, f.quote): f for f in await store.figures_on(source, dt.date.fromisoformat(day))}
        assert {(o.base, o.quote): o.value for o in published} == {k: f.value for k, f in stored.items()}
        for o in published:
            assert stored[(o.base, o.quote)].flag == flagged.get((o.day, o.base, o.quote), ""), o
        # Every blended figure this publisher alone contributed is its own arithmetic, per EUR:
        # a figure published per EUR as is, any other through the publisher's own EUR figure.
        blend = await store.as_of("blend", dt.date.fromisoformat(day))
        mine = [r for r in blend if r.day.isoformat() == day and r.sources == (source,)]
        per_eur = per_eur_of(published)
        for row in mine:
            as_published = [o.value for o in published if o.base == "EUR" and o.quote == row.currency]
            if as_published:
                assert row.value == as_published[0], row  # the publisher's own string, untouched
            else:
                expected = per_eur[row.currency]
                assert abs(Decimal(row.value) / expected - 1) < Decimal("1e-20"), (row, expected)


def per_eur_of(published: list[Observation]) -> dict[str, Decimal]:
    """Units of each currency per one EUR, by the publisher's own figures of one day."""
    home = home_currency((o.base, o.quote) for o in published)
    per_home = {home: Decimal(1)}
    for o in published:
        if o.base == home:
            per_home[o.quote] = Decimal(o.value)
        elif o.quote == home:
            per_home[o.base] = 1 / Decimal(o.value)
    eur = per_home.get("EUR")
    return {code: value / eur for code, value in per_home.items()} if eur else {}


async def test_every_bank_through_the_gateway(
    provider: FakeHttpServer, rates_service: RatesServer, validator_service: ValidatorServer
) -> None:
    """All central banks' fixtures in one mesh: 150+ currencies blended and served by every
    route, each publisher's own figures digit-exact through `source=`."""
    published: list[Observation] = []
    for adapter, routes, options, now in BANKS:  # in date order, as they would have arrived
        _, batches = await collect(provider, adapter, routes, options, now)
        accepted, rejected = await submit(validator_service.port, batches)
        assert {reason for _, reason in rejected} <= JUDGEMENTS, (adapter, rejected[:3])
        assert accepted + len(rejected) == sum(len(b) for b in batches)
        published += [o for batch in batches for o in batch]
    collector = await collector_server.start(
        CollectorSettings(
            address="127.0.0.1:0",
            validator_address=f"127.0.0.1:{validator_service.port}",
            ecb_history_enabled=False,
            autostart=False,
        )
    )
    async with (
        serve_gateway(rates_service.port, collector.port, validator_service.port) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        currencies = (await client.get("/currencies")).json()["currencies"]
        iso = {code for code in currencies if lookup(code) is not None}
        assert len(iso) >= 150, sorted(iso)

        # Every publisher's figures come back as published, in their own orientation.
        groups: dict[tuple[str, str, str], dict[str, str]] = {}
        for o in published:
            groups.setdefault((o.source, o.day, o.base), {})[o.quote] = o.value
        for (source, day, base), figures in sorted(groups.items()):
            codes = sorted(figures)
            for i in range(0, len(codes), 50):
                part = codes[i : i + 50]
                reply = await client.get(
                    "/rates/historical",
                    params={"date": day, "source": source, "base": base, "symbols": ",".join(part)},
                )
                assert reply.status_code == 200, reply.text
                assert reply.json()["rates"] == {c: figures[c] for c in part}, (source, day, base)

        # Every blended currency is served on its last date by historical, timeseries, convert.
        by_day: dict[str, list[str]] = {}
        for code, info in currencies.items():
            if code != "EUR":
                by_day.setdefault(info["last_date"], []).append(code)
        for day, codes in sorted(by_day.items()):
            for i in range(0, len(codes), 50):
                part = sorted(codes)[i : i + 50]
                symbols = ",".join(part)
                past = await client.get(
                    "/rates/historical",
                    params={"date": day, "base": "EUR", "symbols": symbols, "expand": "providers"},
                )
                assert past.status_code == 200, past.text
                body = past.json()
                assert set(body["rates"]) == set(part), day
                assert {body["providers"][c]["date"] for c in part} == {day}
                series = await client.get(
                    "/rates/timeseries",
                    params={"start_date": day, "end_date": day, "base": "EUR", "symbols": symbols},
                )
                assert series.json()["rates"][day] == body["rates"]
                code = part[0]
                converted = await client.get(
                    "/rates/convert", params={"from": "EUR", "to": code, "amount": "1", "date": day}
                )
                assert converted.json()["rate"] == body["rates"][code]

        # The ECB's own figures are the blend, digit for digit, for base EUR.
        ecb = [o for o in published if o.source == "ecb" and o.day == "2016-01-29"]
        blended = (await client.get("/rates/historical", params={"date": "2016-01-29", "base": "EUR"})).json()
        assert {o.quote: o.value for o in ecb} == {c: blended["rates"][c] for c in (o.quote for o in ecb)}

        # Latest serves every currency published within CARRY_DAYS of the newest date.
        latest = (await client.get("/rates/latest", params={"base": "EUR", "expand": "providers"})).json()
        newest = max(info["last_date"] for info in currencies.values())
        recent = {
            code
            for code, info in currencies.items()
            if code != "EUR"
            and dt.date.fromisoformat(newest) - dt.date.fromisoformat(info["last_date"])
            <= dt.timedelta(days=CARRY_DAYS)
        }
        assert recent <= set(latest["rates"])
        assert all(latest["providers"][c]["sources"] for c in latest["rates"])
        # Each publisher is listed with its currencies and their dates.
        publishers = (await client.get("/sources")).json()["publishers"]
        listed = {p["source"]: p for p in publishers}
        for o in published:
            assert listed[o.source]["currencies"][o.quote]["first_date"] <= o.day, o
        # An unknown publisher is a 400 naming the parameter, never a 500.
        unknown = await client.get("/rates/latest", params={"source": "nobody"})
        assert unknown.status_code == 400
        assert unknown.json()["invalid_params"][0]["name"] == "source"
    await collector.stop(0)
