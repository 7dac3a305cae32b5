"""Bank of Russia: XML_daily and XML_dynamic as recorded from cbr.ru (windows-1251), digit-exact."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from kurs_collector.errors import FeedError
from kurs_collector.feeds.cbr import SERIES
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

UTC = dt.UTC
DAILY = "/scripts/XML_daily.asp"
DYNAMIC = "/scripts/XML_dynamic.asp"
NOW = dt.datetime(2026, 4, 25, 6, 0, tzinfo=UTC)


def values(observations: list[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


def recorded_daily(body: bytes) -> dict[str, tuple[str, str, str]]:
    """CharCode -> (ID, Nominal, Value) read from the raw bytes."""
    pattern = rb'<Valute ID="(\w+)">.*?<CharCode>(\w+)</CharCode><Nominal>(\d+)</Nominal>.*?<Value>([\d,]+)<'
    return {c.decode(): (i.decode(), n.decode(), v.decode()) for i, c, n, v in re.findall(pattern, body)}


async def test_latest_url_shape(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("cbr", provider.url, now=NOW)
    url = feed.fetcher.url_for(feed.latest_requests()[0]).removeprefix(provider.url)
    # As CBR's own example link and clients' source code build it (no cassette with date_req found).
    assert url == "/scripts/XML_daily.asp?date_req=25/04/2026"


async def test_range_is_one_dynamic_request_per_currency(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("cbr", provider.url, now=NOW, currencies=["AUD", "GBP"])
    requests = feed.range_requests(dt.date(2026, 3, 1), dt.date(2026, 3, 5))
    # frankfurter spec/vcr_cassettes/cbr.yml (VCR cassette, the request URIs).
    assert [feed.fetcher.url_for(r).removeprefix(provider.url) for r in requests] == [
        "/scripts/XML_dynamic.asp?VAL_NM_RQ=R01010&date_req1=01/03/2026&date_req2=05/03/2026",
        "/scripts/XML_dynamic.asp?VAL_NM_RQ=R01035&date_req1=01/03/2026&date_req2=05/03/2026",
    ]
    year = feed.range_requests(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert len(year) == 2  # a year of backfill: one request per currency


async def test_series_ids_match_the_recording(blob: Blob) -> None:
    for code, (series, _, _) in recorded_daily(blob("cbr/XML_daily.xml")).items():
        if code != "XDR":
            assert SERIES[code] == series


async def test_daily_every_recorded_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("cbr/XML_daily.xml")
    provider.route(DAILY, FakeResponse(body=body, headers={"Content-Type": "text/xml; charset=windows-1251"}))
    feed = make("cbr", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    expected = {
        (code, "RUB", "2026-04-25"): Decimal(value.replace(",", ".")) / int(nominal)
        for code, (_, nominal, value) in recorded_daily(body).items()
        if code != "XDR"
    }
    assert {k: Decimal(v) for k, v in got.items()} == expected
    assert len(got) == 25
    assert got[("USD", "RUB", "2026-04-25")] == "75.5273"
    assert got[("EUR", "RUB", "2026-04-25")] == "88.2826"
    assert got[("BYN", "RUB", "2026-04-25")] == "26.7960"  # published digits kept
    assert got[("HKD", "RUB", "2026-04-25")] == "9.65699"  # 96,5699 per 10
    assert got[("JPY", "RUB", "2026-04-25")] == "0.472636"  # per 100
    assert got[("IDR", "RUB", "2026-04-25")] == "0.00436372"  # per 10000
    assert got[("IRR", "RUB", "2026-04-25")] == "0.0000539256"  # per 1000000
    assert ("XDR", "RUB", "2026-04-25") not in got
    assert feed.problems == []


async def test_daily_observation_time(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(DAILY, FakeResponse(body=blob("cbr/XML_daily.xml")))
    obs = flatten(await drain(make("cbr", provider.url, now=NOW)))
    assert {o.observed_at for o in obs} == {dt.datetime(2026, 4, 24, 21, 0, tzinfo=UTC)}  # 00:00 Moscow


async def test_dynamic_ranges(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    bodies = {s: blob(f"cbr/XML_dynamic-{s}.xml") for s in ("R01010", "R01035", "R01060")}
    provider.route(DYNAMIC, lambda request: FakeResponse(body=bodies[request.query["VAL_NM_RQ"]]))
    feed = make("cbr", provider.url, now=NOW, currencies=["AUD", "GBP", "AMD"])
    batches = [b async for b in feed.collect_range(dt.date(2026, 3, 1), dt.date(2026, 3, 5))]
    got = values(flatten(batches))
    assert len(provider.requests) == 3
    assert got == {
        ("AUD", "RUB", "2026-03-03"): "54.7468",
        ("AUD", "RUB", "2026-03-04"): "55.1336",
        ("AUD", "RUB", "2026-03-05"): "54.4295",
        ("GBP", "RUB", "2026-03-03"): "103.7442",
        ("GBP", "RUB", "2026-03-04"): "103.7714",
        ("GBP", "RUB", "2026-03-05"): "103.4908",
        ("AMD", "RUB", "2026-03-03"): "0.204769",  # 20,4769 per 100
        ("AMD", "RUB", "2026-03-04"): "0.205866",
        ("AMD", "RUB", "2026-03-05"): "0.205899",
    }
    assert [len(b) for b in batches] == [3, 3, 3]  # one batch per day, the three currencies together
    assert feed.problems == []


async def test_bad_value_is_reported_not_fatal(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml").replace(b"<Value>75,5273</Value>", b"<Value>-</Value>")
    provider.route(DAILY, FakeResponse(body=body))
    feed = make("cbr", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    assert ("USD", "RUB", "2026-04-25") not in got
    assert len(got) == 24
    assert len(feed.problems) == 1
    assert feed.problems[0].startswith("USD/RUB 2026-04-25: unreadable")


async def test_zero_nominal_is_reported(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml").replace(b"<Nominal>10</Nominal>", b"<Nominal>0</Nominal>", 1)
    provider.route(DAILY, FakeResponse(body=body))
    feed = make("cbr", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    assert ("HKD", "RUB", "2026-04-25") not in got
    assert any("unit count 0 must be positive" in p for p in feed.problems)


async def test_utf8_body_declared_windows_1251(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml").decode("cp1251").encode("utf-8")
    provider.route(DAILY, FakeResponse(body=body))
    with pytest.raises(FeedError, match="the body is UTF-8 but declares windows-1251"):
        await drain(make("cbr", provider.url, now=NOW))


async def test_windows_1251_body_declared_utf8(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml").replace(b'encoding="windows-1251"', b'encoding="utf-8"')
    provider.route(DAILY, FakeResponse(body=body))
    with pytest.raises(FeedError, match="malformed ValCurs XML"):
        await drain(make("cbr", provider.url, now=NOW))


async def test_truncated(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml")
    provider.route(DAILY, FakeResponse(body=body[: len(body) // 2]))
    with pytest.raises(FeedError, match="truncated"):
        await drain(make("cbr", provider.url, now=NOW))
