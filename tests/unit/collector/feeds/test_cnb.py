"""Czech National Bank: the JSON API answer and a daily fixing file recorded from the bank."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

UTC = dt.UTC
FOLDER = "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
DAILY_TXT = f"{FOLDER}central-bank-exchange-rate-fixing/daily.txt"
YEAR_TXT = f"{FOLDER}central-bank-exchange-rate-fixing/year.txt"
API = "/cnbapi/exrates/daily"
NOW = dt.datetime(2026, 3, 16, 14, 0, tzinfo=UTC)


def values(observations: list[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


async def test_api_url_is_the_recorded_one(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("cnb-api", provider.url, now=NOW)
    url = feed.fetcher.url_for(feed.latest_requests()[0]).removeprefix(provider.url)
    # frankfurter spec/vcr_cassettes/cnb.yml (VCR cassette, the request URI).
    assert url == "/cnbapi/exrates/daily?date=2026-03-16&lang=EN"


async def test_api_backfill_is_one_request_per_year(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("cnb-api", provider.url, now=NOW)
    requests = feed.range_requests(dt.date(2024, 12, 1), dt.date(2025, 12, 31))
    # No recording of daily-year was found: the shape is the bank's API documentation's.
    assert [feed.fetcher.url_for(r).removeprefix(provider.url) for r in requests] == [
        "/cnbapi/exrates/daily-year?year=2024&lang=EN",
        "/cnbapi/exrates/daily-year?year=2025&lang=EN",
    ]


async def test_api_every_recorded_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(API, FakeResponse(body=blob("cnb/api-daily-2026-03-16.json")))
    feed = make("cnb-api", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    doc = json.loads(blob("cnb/api-daily-2026-03-16.json"), parse_float=str)
    expected = {
        (r["currencyCode"], "CZK", r["validFor"]): Decimal(r["rate"]) / r["amount"]
        for r in doc["rates"]
        if r["currencyCode"] != "XDR"
    }
    assert {k: Decimal(v) for k, v in got.items()} == expected
    assert got[("USD", "CZK", "2026-03-16")] == "21.284"
    assert got[("DKK", "CZK", "2026-03-16")] == "3.270"  # the trailing zero as written
    assert got[("JPY", "CZK", "2026-03-16")] == "0.13377"  # 13.377 per 100 yen
    assert got[("IDR", "CZK", "2026-03-16")] == "0.001253"  # 1.253 per 1000 rupiah
    assert ("XDR", "CZK", "2026-03-16") not in got  # the SDR is not a currency
    assert feed.problems == []


async def test_api_bad_figure_is_reported_not_fatal(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("cnb/api-daily-2026-03-16.json").replace(b'"rate":21.284', b'"rate":null')
    provider.route(API, FakeResponse(body=body))
    feed = make("cnb-api", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    assert ("USD", "CZK", "2026-03-16") not in got
    assert len(got) == 17  # 19 rates, XDR skipped, USD unreadable
    assert len(feed.problems) == 1
    assert feed.problems[0].startswith("USD/CZK")


async def test_api_wrong_document(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(API, FakeResponse(body=b'[{"table":"A"}]'))
    with pytest.raises(FeedError, match=r'not \{"rates"'):
        await drain(make("cnb-api", provider.url, now=NOW))


async def test_czech_fixing_with_legacy_table(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(DAILY_TXT, FakeResponse(body=blob("cnb/daily-2000-04-21-cs.txt")))
    feed = make("cnb", provider.url, now=dt.datetime(2000, 4, 21, 14, 0, tzinfo=UTC))
    got = values(flatten(await drain(feed)))
    day = "2000-04-21"
    assert got[("EUR", "CZK", day)] == "36.270"
    assert got[("USD", "CZK", day)] == "38.595"
    assert got[("JPY", "CZK", day)] == "0.3685"  # 36,850 per 100 yen
    assert got[("HUF", "CZK", day)] == "0.14054"
    # The second table (legacy denominations: BEF, FRF, DEM, ...) is not a fixing.
    assert not {"BEF", "FRF", "DEM", "ITL"} & {k[0] for k in got}
    # GRD, SKK and SIT were ISO currencies on that day, or are refused by the screen with a
    # reason; either way nothing is dropped silently.
    kept = {k[0] for k in got}
    assert len(kept) + len(feed.problems) == 16  # 17 rows, XDR skipped


async def test_year_file_one_request_per_year(provider: FakeHttpServer, make: MakeFeed) -> None:
    # Written from the bank's description of year.txt, not a recording.
    body = (
        b"Date|1 AUD|100 JPY|1 USD\n02.01.2025|15.108|15.424|24.323\n03.01.2025|15.121|15.446|n/a\n"
        b"Date|1 AUD|100 JPY|1 USD|1 XCG\n06.01.2025|15.110|15.411|24.240|13.500\n"
    )
    provider.route(YEAR_TXT, FakeResponse(body=body))
    feed = make("cnb", provider.url)
    batches = [b async for b in feed.collect_range(dt.date(2025, 1, 1), dt.date(2025, 1, 31))]
    assert [r.query for r in provider.requests] == [{"year": "2025"}]
    got = values(flatten(batches))
    assert got[("JPY", "CZK", "2025-01-02")] == "0.15424"
    assert got[("USD", "CZK", "2025-01-06")] == "24.240"
    assert ("USD", "CZK", "2025-01-03") not in got
    assert any(p.startswith("USD/CZK 2025-01-03") for p in feed.problems)


async def test_english_daily_txt(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    # cnb/daily.txt is written from documentation, not a recording (none was found).
    provider.route(DAILY_TXT, FakeResponse(body=blob("cnb/daily.txt")))
    got = values(flatten(await drain(make("cnb", provider.url))))
    assert got[("JPY", "CZK", "2025-01-15")] == "0.15613"
    assert got[("IDR", "CZK", "2025-01-15")] == "0.001496"
