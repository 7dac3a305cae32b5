"""ECB: eurofxref daily / 90-day XML (recorded) and the SDMX CSV API, through the real fetcher."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import REFERENCE, Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

DAILY = "/stats/eurofxref/eurofxref-daily.xml"
HIST = "/stats/eurofxref/eurofxref-hist-90d.xml"
SDMX_ALL = "/service/data/EXR/D..EUR.SP00.A"
CUBE = re.compile(r"<Cube currency=['\"]([A-Z]{3})['\"] rate=['\"]([^'\"]+)['\"]/>")
DAY = re.compile(r"<Cube time=['\"](\d{4}-\d\d-\d\d)['\"]>(.*?)</Cube>", re.S)


def pairs(observations: Sequence[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


def raw_figures(text: str) -> dict[tuple[str, str, str], str]:
    """The figures of a eurofxref file read independently of the feed (regex over the raw text)."""
    return {
        ("EUR", currency, day): rate
        for day, cubes in DAY.findall(text)
        for currency, rate in CUBE.findall(cubes)
    }


# --- recorded eurofxref files ------------------------------------------------------------------
async def test_daily_recorded_every_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-daily-2016-01-29.xml")  # recorded: see tests/fixtures/sources/ecb/README.md
    provider.route(DAILY, FakeResponse(body=body, headers={"Content-Type": "text/xml"}))
    feed = make("ecb-daily", provider.url, now=dt.datetime(2016, 2, 1, 12, 0, tzinfo=dt.UTC))
    batches = await drain(feed)
    assert len(batches) == 1
    got = pairs(batches[0])
    expected = raw_figures(body.decode())
    assert len(expected) == 31
    assert got == expected
    assert got[("EUR", "USD", "2016-01-29")] == "1.0920"  # trailing zero kept as published
    assert got[("EUR", "GBP", "2016-01-29")] == "0.76410"
    usd = next(o for o in batches[0] if o.quote == "USD")
    assert (usd.source, usd.feed, usd.kind) == ("ecb", "ecb-daily", REFERENCE)
    assert usd.observed_at == dt.datetime(2016, 1, 29, 15, 0, tzinfo=dt.UTC)  # 16:00 CET
    assert feed.problems == []


async def test_90d_recorded_one_batch_per_day_oldest_first(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-hist-90d-2017-03-03.xml")
    provider.route(HIST, FakeResponse(body=body))
    feed = make("ecb-90d", provider.url, now=dt.datetime(2017, 3, 6, 12, 0, tzinfo=dt.UTC))
    batches = await drain(feed)
    assert [b[0].day for b in batches] == ["2016-12-05", "2017-03-01", "2017-03-02", "2017-03-03"]
    assert [len(b) for b in batches] == [31, 31, 31, 31]
    got = pairs(flatten(batches))
    assert got == raw_figures(body.decode())
    assert got[("EUR", "USD", "2017-03-03")] == "1.0565"
    assert got[("EUR", "IDR", "2016-12-05")] == "14375.46"
    assert feed.problems == []


async def test_requests_match_the_providers_urls(make: MakeFeed) -> None:
    # The ECB's own links (ecb.europa.eu/stats/eurofxref/); no query.
    daily = make("ecb-daily", "https://www.ecb.europa.eu")
    assert [daily.fetcher.url_for(r) for r in daily.latest_requests()] == [
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
    ]
    assert [daily.fetcher.url_for(r) for r in daily.catch_up_requests(dt.date(2025, 1, 1))] == [
        "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml"
    ]
    # SDMX: the URL an open-source client's test asserts it sends (source code, not a cassette):
    # .../service/data/EXR/D.USD.EUR.SP00.A?startPeriod=2026-08-26&endPeriod=2026-09-05&format=csvdata
    sdmx = make("ecb-sdmx", "https://data-api.ecb.europa.eu", currencies=["USD"])
    urls = [sdmx.fetcher.url_for(r) for r in sdmx.range_requests(dt.date(2026, 8, 26), dt.date(2026, 9, 5))]
    assert urls == [
        "https://data-api.ecb.europa.eu/service/data/EXR/D.USD.EUR.SP00.A"
        "?startPeriod=2026-08-26&endPeriod=2026-09-05&format=csvdata"
    ]
    # A year's backfill of every currency is one request.
    assert len(make("ecb-sdmx", "https://x").range_requests(dt.date(2024, 1, 1), dt.date(2024, 12, 31))) == 1


async def test_a_cube_without_rate_or_time_is_reported_not_fatal(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = (
        blob("ecb/eurofxref-daily-2016-01-29.xml")
        .replace(b"<Cube currency='JPY' rate='132.25'/>", b"<Cube currency='JPY'/>")
        .replace(b"rate='1.0920'", b"rate='1,0920'")
    )
    provider.route(DAILY, FakeResponse(body=body))
    feed = make("ecb-daily", provider.url, now=dt.datetime(2016, 2, 1, tzinfo=dt.UTC))
    got = pairs(flatten(await drain(feed)))
    assert len(got) == 29
    assert ("EUR", "JPY", "2016-01-29") not in got
    assert ("EUR", "USD", "2016-01-29") not in got
    assert len(feed.problems) == 2
    assert "without its currency or rate" in feed.problems[0]
    assert "EUR/USD 2016-01-29" in feed.problems[1]
    assert "not a plain decimal" in feed.problems[1]


# --- documentation-written fixtures (kept: other tests use them) -------------------------------
async def test_daily_documentation_written_fixture(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(DAILY, FakeResponse(body=blob("ecb/eurofxref-daily.xml")))
    obs = flatten(await drain(make("ecb-daily", provider.url)))
    assert len(obs) == 30
    assert pairs(obs)[("EUR", "USD", "2025-01-15")] == "1.0316"


async def test_summer_time_observation(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("ecb/eurofxref-daily-2016-01-29.xml").replace(b"2016-01-29", b"2016-07-15")
    provider.route(DAILY, FakeResponse(body=body))
    obs = flatten(await drain(make("ecb-daily", provider.url, now=dt.datetime(2016, 7, 18, tzinfo=dt.UTC))))
    assert obs[0].observed_at == dt.datetime(2016, 7, 15, 14, 0, tzinfo=dt.UTC)  # CEST, UTC+2


# --- SDMX CSV ----------------------------------------------------------------------------------
async def test_sdmx_range_documentation_written_fixture(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    # exr-range.csv is written from the API documentation, not a recording (see the README).
    provider.route("/service/data/EXR/D.USD+JPY.EUR.SP00.A", FakeResponse(body=blob("ecb/exr-range.csv")))
    feed = make("ecb-sdmx", provider.url, currencies=["USD", "JPY"])
    batches = [b async for b in feed.collect_range(dt.date(2025, 1, 13), dt.date(2025, 1, 14))]
    assert provider.requests[-1].query == {
        "startPeriod": "2025-01-13",
        "endPeriod": "2025-01-14",
        "format": "csvdata",
    }
    assert pairs(flatten(batches)) == {
        ("EUR", "JPY", "2025-01-13"): "161.23",
        ("EUR", "JPY", "2025-01-14"): "162.63",
        ("EUR", "USD", "2025-01-13"): "1.0245",
        ("EUR", "USD", "2025-01-14"): "1.0309",
    }


async def test_sdmx_latest_asks_last_observation(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(SDMX_ALL, FakeResponse(body=blob("ecb/exr-range.csv")))
    await drain(make("ecb-sdmx", provider.url))
    assert provider.requests[-1].query == {"lastNObservations": "1", "format": "csvdata"}


@pytest.mark.parametrize(
    "body",
    [
        # No CURRENCY_DENOM column: the denominator comes from KEY.
        b"KEY,FREQ,CURRENCY,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n"
        b"EXR.D.USD.EUR.SP00.A,D,USD,SP00,A,2025-01-13,1.0245\n",
        # Neither KEY nor CURRENCY_DENOM, columns reordered, a BOM: EUR from the request's key.
        b"\xef\xbb\xbfOBS_VALUE,TIME_PERIOD,CURRENCY\n1.0245,2025-01-13,USD\n",
        # SDMX-CSV 1.0 (DATAFLOW column) with extra attribute columns.
        b"DATAFLOW,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,OBS_STATUS,NEW_ATTR\n"
        b"ECB:EXR(1.0),D,USD,EUR,SP00,A,2025-01-13,1.0245,A,x\n",
    ],
)
async def test_sdmx_csv_shapes(provider: FakeHttpServer, make: MakeFeed, body: bytes) -> None:
    provider.route("/service/data/EXR/D.USD.EUR.SP00.A", FakeResponse(body=body))
    feed = make("ecb-sdmx", provider.url, currencies=["USD"])
    assert pairs(flatten(await drain(feed))) == {("EUR", "USD", "2025-01-13"): "1.0245"}
    assert feed.problems == []


async def test_sdmx_unreadable_figures_are_reported_one_by_one(
    provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = (
        b"KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n"
        b"EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2025-01-13,1.0245\n"
        b"EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2025-01-14,NaN\n"
        b"EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2025-01-15,1.03.16\n"
        b"EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2025-13-15,1.0316\n"
        b"EXR.D.USD.EUR.EN00.A,D,USD,EUR,EN00,A,2025-01-13,99.1\n"
    )
    provider.route(SDMX_ALL, FakeResponse(body=body))
    feed = make("ecb-sdmx", provider.url)
    assert pairs(flatten(await drain(feed))) == {("EUR", "USD", "2025-01-13"): "1.0245"}  # NaN: no figure
    assert len(feed.problems) == 3
    assert "unreadable figure '1.03.16'" in feed.problems[0]
    assert "TIME_PERIOD '2025-13-15' is not a day" in feed.problems[1]
    assert "D/EN00 is not a daily spot rate" in feed.problems[2]


async def test_sdmx_csv_that_is_not_data_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(SDMX_ALL, FakeResponse(body=b"id,name\nEXR,Exchange rates\n"))
    with pytest.raises(FeedError, match="not an SDMX data CSV: no column"):
        await drain(make("ecb-sdmx", provider.url))
