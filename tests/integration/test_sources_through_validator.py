"""Every central bank's real-format fixture, fetched and parsed by its real feed, is accepted by
the real validator and lands in the real rates store (pivot EUR) — the collector and validator
agree on quote directions, unit multipliers and same-source crosses."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_collector.config import SourceConfig
from kurs_collector.fakes import FakeHttpServer, FakeResponse, drain
from kurs_collector.sources import make_feed
from kurs_collector.state import StateStore
from kurs_common.observation import LIVE, Observation
from kurs_rates.server import RatesService
from kurs_validator.server import ValidatorService

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)  # market polls are stamped with the poll instant

# adapter, {path: fixture}, options, the feed's clock
CASES: list[tuple[str, dict[str, str], dict[str, Any], dt.datetime]] = [
    (
        "ecb-daily",
        {"/stats/eurofxref/eurofxref-daily.xml": "ecb/eurofxref-daily.xml"},
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    (
        "ecb-90d",
        {"/stats/eurofxref/eurofxref-hist-90d.xml": "ecb/eurofxref-hist-90d.xml"},
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    (
        "boc",
        {"/valet/observations/group/FX_RATES_DAILY/json": "boc/fx_rates_daily.json"},
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    (
        "boe",
        {"/boeapps/database/_iadb-fromshowcolumns.asp": "boe/iadb.csv"},
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    ("fed-h10", {"/datadownload/Output.aspx": "fed/h10.csv"}, {}, dt.datetime(2025, 1, 20, tzinfo=UTC)),
    (
        "norges",
        {"/api/data/EXR/B.EUR+USD+JPY+SEK.NOK.SP": "norges/exr.csv"},
        {"currencies": ["EUR", "USD", "JPY", "SEK"]},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    (
        "cnb",
        {
            "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
            "central-bank-exchange-rate-fixing/daily.txt": "cnb/daily.txt"
        },
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    ("nbp-a", {"/api/exchangerates/tables/A/": "nbp/table-a.json"}, {}, dt.datetime(2025, 1, 20, tzinfo=UTC)),
    (
        "rba",
        {"/statistics/tables/csv/f11.1-data.csv": "rba/f11.1-data.csv"},
        {},
        dt.datetime(2025, 1, 20, tzinfo=UTC),
    ),
    ("cbr", {"/scripts/XML_daily.asp": "cbr/XML_daily.xml"}, {}, dt.datetime(2025, 1, 15, 6, tzinfo=UTC)),
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


@pytest.fixture
async def provider() -> AsyncIterator[FakeHttpServer]:
    async with FakeHttpServer() as server:
        yield server


@pytest.mark.parametrize(("adapter", "routes", "options", "now"), CASES, ids=[c[0] for c in CASES])
async def test_central_bank_fixture_is_accepted_end_to_end(
    adapter: str,
    routes: dict[str, str],
    options: dict[str, Any],
    now: dt.datetime,
    provider: FakeHttpServer,
    rates_service: RatesService,
    validator_service: ValidatorService,
) -> None:
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
        batches = await drain(feed)
    observations = [o for batch in batches for o in batch]
    assert observations, "the fixture produced no observations"
    accepted = 0
    rejections: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{validator_service.port}") as channel:
        stub = validator_pb2_grpc.ValidatorServiceStub(channel)
        if adapter == "binance":
            # Binance has no USD market: its USDT figures are compared through the live EUR/USD
            # consensus of the other exchanges, here one Kraken tick of the same instant.
            tick = Observation("kraken", "kraken", LIVE, "EUR", "USD", "1.0316", now.date().isoformat(), now)
            reply = await stub.SubmitObservations(
                validator_pb2.SubmitObservationsRequest(observations=[tick.to_proto()])
            )
            assert reply.accepted == 1
        for batch in batches:
            reply = await stub.SubmitObservations(
                validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in batch])
            )
            accepted += reply.accepted
            rejections += [
                f"{batch[r.index].base}/{batch[r.index].quote}: {r.reason} {r.detail}"
                for r in reply.rejections
            ]
    assert rejections == []
    assert accepted == len(observations)
    if observations[0].kind == LIVE:
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
    stored = await rates_service.store.series(feed.source, dt.date(2024, 1, 1), dt.date(2025, 12, 31))
    assert stored, f"nothing from {feed.source} reached the rates store"
    # Every stored figure is the source's own arithmetic, per EUR: published per EUR as is, and a
    # home-currency quote X/H as (H per EUR) / (H per X).
    for day, rates in stored.items():
        published = [o for o in observations if o.day == day.isoformat()]
        per_eur = {o.quote: o.value for o in published if o.base == "EUR"}
        for obs in published:
            if obs.base == "EUR":
                assert rates[obs.quote] == obs.value  # the published string itself
            elif obs.quote in per_eur and obs.base in rates:
                expected = Decimal(per_eur[obs.quote]) / Decimal(obs.value)
                assert abs(Decimal(rates[obs.base]) / expected - 1) < Decimal("1e-9"), (day, obs)
