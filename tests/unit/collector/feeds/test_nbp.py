"""National Bank of Poland: tables A and B as recorded from api.nbp.pl, parsed digit-exact."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

UTC = dt.UTC
RANGE = "/api/exchangerates/tables/A/2026-03-01/2026-03-19/"
NOW = dt.datetime(2026, 3, 19, 12, 0, tzinfo=UTC)


def values(observations: list[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


def raw_mids(body: bytes) -> dict[tuple[str, str], str]:
    """(code, effectiveDate) -> the `mid` digits exactly as written in the body."""
    out: dict[tuple[str, str], str] = {}
    for table in re.finditer(rb'"effectiveDate":"([0-9-]+)","rates":\[(.*?)\]', body):
        for code, mid in re.findall(rb'"code":"([A-Z]{3})","mid":([0-9.]+)', table.group(2)):
            out[(code.decode(), table.group(1).decode())] = mid.decode()
    return out


async def test_range_url_is_the_recorded_one(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("nbp-a", provider.url, now=NOW)
    (request,) = feed.range_requests(dt.date(2026, 3, 1), dt.date(2026, 3, 19))
    # frankfurter spec/vcr_cassettes/nbp.yml (VCR cassette, the request URI).
    assert feed.fetcher.url_for(request).removeprefix(provider.url) == f"{RANGE}?format=json"
    year = feed.range_requests(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert len(year) == 4  # the API serves at most 93 days per request


async def test_table_a_every_recorded_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("nbp/table-a.json")
    provider.route(RANGE, FakeResponse(body=body))
    feed = make("nbp-a", provider.url, now=NOW)
    batches = [b async for b in feed.collect_range(dt.date(2026, 3, 1), dt.date(2026, 3, 19))]
    got = values(flatten(batches))
    expected = {(c, "PLN", d): mid for (c, d), mid in raw_mids(body).items() if c != "XDR"}
    assert got == expected
    assert len(got) == 2 * 31
    assert got[("USD", "PLN", "2026-03-03")] == "3.6820"  # digits as published, trailing zero kept
    assert got[("IDR", "PLN", "2026-03-02")] == "0.00021385"
    assert ("XDR", "PLN", "2026-03-02") not in got  # the SDR is not a currency
    assert feed.problems == []


async def test_table_b_recorded(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("nbp/table-b.json")
    provider.route("/api/exchangerates/tables/B/", FakeResponse(body=body))
    feed = make("nbp-b", provider.url, now=dt.datetime(2022, 5, 12, tzinfo=UTC))
    got = values(flatten(await drain(feed)))
    assert provider.requests[-1].query == {"format": "json"}
    day = "2022-05-11"
    assert got[("XAF", "PLN", day)] == "0.00701"
    assert got[("VND", "PLN", day)] == "0.00019185"
    assert got[("PAB", "PLN", day)] == "4.4190"
    # ANG: still an ISO 4217 code in 2022 (replaced by XCG since); accepted or refused with a reason.
    assert len(got) + len(feed.problems) == len(raw_mids(body)) == 13


async def test_table_b_xcg_and_a_small_xaf(provider: FakeHttpServer, make: MakeFeed) -> None:
    # Written, not a recording: no recorded table B of 2025 (with XCG) was found.
    doc = [
        {
            "table": "B",
            "no": "003/B/NBP/2025",
            "effectiveDate": "2025-01-15",
            "rates": [
                {"currency": "frank CFA BEAC", "code": "XAF", "mid": "XAF_MID"},
                {"currency": "gulden karaibski", "code": "XCG", "mid": "XCG_MID"},
            ],
        }
    ]
    text = json.dumps(doc).replace('"XAF_MID"', "0.006394").replace('"XCG_MID"', "2.3000")
    provider.route("/api/exchangerates/tables/B/", FakeResponse(body=text.encode()))
    feed = make("nbp-b", provider.url, now=dt.datetime(2025, 1, 16, tzinfo=UTC))
    got = values(flatten(await drain(feed)))
    assert got[("XAF", "PLN", "2025-01-15")] == "0.006394"
    # XCG (Caribbean guilder, ISO 4217 since 2025) is parsed and passes the currency screen.
    assert got[("XCG", "PLN", "2025-01-15")] == "2.3000"
    assert feed.problems == []


async def test_unreadable_mid_is_reported(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("nbp/table-a.json").replace(b'"code":"USD","mid":3.6056', b'"code":"USD","mid":null')
    provider.route(RANGE, FakeResponse(body=body))
    feed = make("nbp-a", provider.url, now=NOW)
    got = values(flatten([b async for b in feed.collect_range(dt.date(2026, 3, 1), dt.date(2026, 3, 19))]))
    assert ("USD", "PLN", "2026-03-02") not in got
    assert got[("USD", "PLN", "2026-03-03")] == "3.6820"
    assert feed.problems == ["USD/PLN 2026-03-02: unreadable mid (None is not a number)"]


async def test_no_data_is_empty_not_an_error(provider: FakeHttpServer, make: MakeFeed) -> None:
    path = "/api/exchangerates/tables/A/2025-01-18/2025-01-19/"
    # The 404 text as the API answers it (recorded in florianv/exchanger's NBP tests).
    provider.route(path, FakeResponse(404, b"404 NotFound - Not Found - Brak danych"))
    feed = make("nbp-a", provider.url)
    assert [b async for b in feed.collect_range(dt.date(2025, 1, 18), dt.date(2025, 1, 19))] == []
    assert feed.problems == []


async def test_wrong_table(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/exchangerates/tables/A/", FakeResponse(body=blob("nbp/table-b.json")))
    with pytest.raises(FeedError, match="asked for table A, got 'B'"):
        await drain(make("nbp-a", provider.url))
