"""Every source, from its real published format, through the real fetch and parser."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_collector.errors import FeedError
from kurs_collector.fakes import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten
from kurs_common.observation import REFERENCE


def pairs(observations: list) -> dict[tuple[str, str, str], str]:  # type: ignore[type-arg]
    return {(o.base, o.quote, o.day): o.value for o in observations}


async def test_ecb_daily(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/stats/eurofxref/eurofxref-daily.xml", FakeResponse(body=blob("ecb/eurofxref-daily.xml")))
    feed = make("ecb-daily", provider.url)
    batches = await drain(feed)
    assert len(batches) == 1
    obs = batches[0]
    assert len(obs) == 30
    usd = next(o for o in obs if o.quote == "USD")
    assert (usd.source, usd.feed, usd.kind, usd.base, usd.value, usd.day) == (
        "ecb",
        "ecb-daily",
        REFERENCE,
        "EUR",
        "1.0316",
        "2025-01-15",
    )
    # 16:00 in Frankfurt (CET, UTC+1 in January) is 15:00 UTC.
    assert usd.observed_at == dt.datetime(2025, 1, 15, 15, 0, tzinfo=dt.UTC)
    assert usd.fetched_at is not None
    assert usd.fetched_at.tzinfo is not None
    assert next(o for o in obs if o.quote == "GBP").value == "0.84248"
    assert feed.problems == []


async def test_ecb_90d_one_batch_per_day_oldest_first(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-hist-90d.xml")
    provider.route("/stats/eurofxref/eurofxref-hist-90d.xml", FakeResponse(body=body))
    batches = await drain(make("ecb-90d", provider.url))
    assert [b[0].day for b in batches] == ["2025-01-13", "2025-01-14", "2025-01-15"]
    assert pairs(flatten(batches))[("EUR", "JPY", "2025-01-14")] == "162.63"


async def test_ecb_summer_time_observation(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("ecb/eurofxref-daily.xml").replace(b"2025-01-15", b"2024-07-15")
    provider.route("/stats/eurofxref/eurofxref-daily.xml", FakeResponse(body=body))
    obs = flatten(await drain(make("ecb-daily", provider.url)))
    assert obs[0].observed_at == dt.datetime(2024, 7, 15, 14, 0, tzinfo=dt.UTC)  # CEST, UTC+2


async def test_ecb_sdmx_range(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/service/data/EXR/D.USD+JPY.EUR.SP00.A", FakeResponse(body=blob("ecb/exr-range.csv")))
    feed = make("ecb-sdmx", provider.url, currencies=["USD", "JPY"])
    batches = [b async for b in feed.collect_range(dt.date(2025, 1, 13), dt.date(2025, 1, 14))]
    request = provider.requests[-1]
    assert request.query == {"startPeriod": "2025-01-13", "endPeriod": "2025-01-14", "format": "csvdata"}
    assert pairs(flatten(batches)) == {
        ("EUR", "JPY", "2025-01-13"): "161.23",
        ("EUR", "JPY", "2025-01-14"): "162.63",
        ("EUR", "USD", "2025-01-13"): "1.0245",
        ("EUR", "USD", "2025-01-14"): "1.0309",
    }
    assert [len(b) for b in batches] == [2, 2]


async def test_ecb_sdmx_latest_asks_last_observation(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route("/service/data/EXR/D..EUR.SP00.A", FakeResponse(body=blob("ecb/exr-range.csv")))
    await drain(make("ecb-sdmx", provider.url))
    assert provider.requests[-1].query == {"lastNObservations": "1", "format": "csvdata"}


async def test_boc_valet(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    path = "/valet/observations/group/FX_RATES_DAILY/json"
    provider.route(path, FakeResponse(body=blob("boc/fx_rates_daily.json")))
    feed = make("boc", provider.url)
    obs = flatten(await drain(feed))
    assert provider.requests[-1].query == {"recent": "5"}
    got = pairs(obs)
    assert got[("USD", "CAD", "2025-01-15")] == "1.4360"  # published string, trailing zero kept
    assert got[("JPY", "CAD", "2025-01-13")] == "0.009141"
    assert len(obs) == 15
    # 16:30 in Toronto (EST, UTC-5) is 21:30 UTC.
    assert obs[0].observed_at == dt.datetime(2025, 1, 13, 21, 30, tzinfo=dt.UTC)


async def test_boe_iadb(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    path = "/boeapps/database/_iadb-fromshowcolumns.asp"
    provider.route(path, FakeResponse(body=blob("boe/iadb.csv"), headers={"Content-Type": "text/csv"}))
    obs = flatten(await drain(make("boe", provider.url)))
    query = provider.requests[-1].query
    assert query["SeriesCodes"] == "XUDLUSS,XUDLERS,XUDLJYS,XUDLCDS,XUDLSFS,XUDLADS"
    assert query["CSVF"] == "TN"
    assert query["Dateto"] == "now"
    assert query["Datefrom"] == "10/Jan/2025"
    got = pairs(obs)
    assert got[("GBP", "USD", "2025-01-13")] == "1.2170"
    assert got[("GBP", "EUR", "2025-01-15")] == "1.1870"
    assert len(obs) == 18
    assert obs[0].observed_at == dt.datetime(2025, 1, 13, 16, 0, tzinfo=dt.UTC)  # GMT


async def test_fred_series_observations(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        assert request.query["api_key"] == "test-key"
        assert request.query["file_type"] == "json"
        return FakeResponse(body=blob(f"fed/fred-{request.query['series_id']}.json"))

    provider.route("/fred/series/observations", handler)
    feed = make("fed-fred", provider.url, series=["DEXUSEU", "DEXJPUS"], api_key_env="TEST_FRED_KEY")
    feed.ctx.secrets["TEST_FRED_KEY"] = "test-key"
    batches = await drain(feed)
    got = pairs(flatten(batches))
    # Mixed directions kept as published: USD per EUR, JPY per USD; "." is no figure.
    assert got[("EUR", "USD", "2025-01-13")] == "1.0245"
    assert got[("USD", "JPY", "2025-01-16")] == "155.21"
    assert ("EUR", "USD", "2025-01-17") not in got
    # One batch per day holding both series (so a cross through EUR/USD is possible).
    assert [sorted(o.quote for o in b) for b in batches] == [["JPY", "USD"]] * 4
    # Noon in New York.
    assert batches[0][0].observed_at == dt.datetime(2025, 1, 13, 17, 0, tzinfo=dt.UTC)


async def test_fred_without_api_key_fails_clearly(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("fed-fred", provider.url, api_key_env="KURS_TEST_NO_SUCH_KEY")
    with pytest.raises(Exception, match="no FRED API key: set KURS_TEST_NO_SUCH_KEY"):
        await drain(feed)
    assert provider.requests == []


async def test_fed_h10_ddp_csv(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/datadownload/Output.aspx", FakeResponse(body=blob("fed/h10.csv")))
    obs = flatten(await drain(make("fed-h10", provider.url)))
    query = provider.requests[-1].query
    assert query["rel"] == "H10"
    assert query["filetype"] == "csv"
    assert query["layout"] == "seriescolumn"
    got = pairs(obs)
    assert got[("EUR", "USD", "2025-01-14")] == "1.0309"  # RXI$US: US$ per euro
    assert got[("GBP", "USD", "2025-01-14")] == "1.2216"
    assert got[("USD", "JPY", "2025-01-14")] == "157.78"  # RXI: yen per US$
    assert got[("USD", "CHF", "2025-01-16")] == "0.9127"
    assert not [k for k in got if k[2] == "2025-01-17"]  # ND
    assert len(obs) == 20


async def test_fred_api_key_never_appears_in_errors(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/fred/series/observations", FakeResponse(500, b"oops"))
    feed = make("fed-fred", provider.url, series=["DEXUSEU"], api_key_env="TEST_FRED_KEY")
    feed.ctx.secrets["TEST_FRED_KEY"] = "s3cret-key"
    with pytest.raises(FeedError) as caught:
        await drain(feed)
    assert "api_key=***" in str(caught.value)
    assert "s3cret-key" not in str(caught.value)
