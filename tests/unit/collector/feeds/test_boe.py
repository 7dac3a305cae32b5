"""Bank of England IADB: the series table, request shape and a tolerant, strict CSV parser.

No recorded IADB CSV answer was found in public repositories (see the fixture README); the
bodies here are written in the documented CSVF=TN shape. The figures of 17 Mar 2026 are the
real ones quoted in issue #9 (USD 1.3343, KRW 1986.5526, INR 123.2486).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import pytest

from kurs_collector.errors import FeedError
from kurs_collector.feeds.boe import SERIES
from kurs_common.currencies import lookup
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

PATH = "/boeapps/database/_iadb-fromshowcolumns.asp"
NOW = dt.datetime(2026, 3, 18, 12, 0, tzinfo=dt.UTC)


def pairs(observations: Sequence[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


async def test_won_and_rupee_are_not_confused(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = b"DATE,XUDLUSS,XUDLBK93,XUDLBK97\n17 Mar 2026,1.3343,1986.5526,123.2486\n"
    provider.route(PATH, FakeResponse(body=body, headers={"Content-Type": "text/csv"}))
    feed = make("boe", provider.url, now=NOW, series=["XUDLUSS", "XUDLBK93", "XUDLBK97"])
    got = pairs(flatten(await drain(feed)))
    assert got == {
        ("GBP", "USD", "2026-03-17"): "1.3343",  # USD per GBP, the BoE's own quote
        ("GBP", "KRW", "2026-03-17"): "1986.5526",
        ("GBP", "INR", "2026-03-17"): "123.2486",
    }
    assert feed.problems == []


def test_series_table() -> None:
    # Spot checks, not a second copy of the table: the two codes the real figures of
    # 17 Mar 2026 pin down (KRW 1986.5526, INR 123.2486), and the numbered "BK" codes, which
    # are the easiest to mistype; each agrees with two independent public tables of the IADB
    # sterling spot codes (tiksn/TIKSN-Framework BankOfEngland.cs; ontofractal/quandlex forex.ex).
    assert (SERIES["XUDLBK93"], SERIES["XUDLBK97"]) == ("KRW", "INR")
    assert (SERIES["XUDLBK25"], SERIES["XUDLBK85"], SERIES["XUDLBK89"]) == ("CZK", "RUB", "CNY")
    # The rest by its shape: sterling series only ("XUDL..S" or "XUDLBKnn"; the dollar twins
    # "XUDL..D" quote against USD), each an ISO currency other than sterling, one per currency.
    assert all(re.fullmatch(r"XUDL(?:[A-Z]{2}S|BK\d{2})", code) for code in SERIES)
    assert all(lookup(currency) is not None for currency in SERIES.values())
    assert "GBP" not in SERIES.values()
    assert len(set(SERIES.values())) == len(SERIES)


async def test_every_series_is_accepted_and_asked_in_one_request(make: MakeFeed) -> None:
    feed = make("boe", "https://www.bankofengland.co.uk", now=NOW, series=list(SERIES))
    requests = feed.range_requests(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert len(requests) == 1  # a year of every series: one fetch
    assert dict(requests[0].params)["SeriesCodes"] == ",".join(SERIES)


async def test_request_matches_recorded_url(make: MakeFeed) -> None:
    # The URL public IADB clients build (source code, not a cassette), e.g.
    # ...?csv.x=yes&Datefrom=01/Jan/2005&Dateto=31/Dec/2025&SeriesCodes=...&CSVF=TN&UsingCodes=Y&VPD=Y&VFD=N
    feed = make("boe", "https://www.bankofengland.co.uk", now=NOW, series=["XUDLUSS"])
    url = feed.fetcher.url_for(feed.range_requests(dt.date(2005, 1, 1), dt.date(2025, 12, 31))[0])
    assert url == (
        "https://www.bankofengland.co.uk/boeapps/database/_iadb-fromshowcolumns.asp?csv.x=yes"
        "&Datefrom=01/Jan/2005&Dateto=31/Dec/2025&SeriesCodes=XUDLUSS&CSVF=TN&UsingCodes=Y&VPD=Y&VFD=N"
    )
    latest = feed.fetcher.url_for(feed.latest_requests()[0])
    assert "&Datefrom=08/Mar/2026&Dateto=now&" in latest


async def test_unknown_series_is_reported_once_and_skipped(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = (
        b"\xef\xbb\xbfDATE,XUDLBK97,XUDLBK64,XUDLUSS\n"  # BOM; XUDLBK64 is INR per USD: not ours
        b"16 Mar 2026,123.0,91.9,1.3300\n"
        b"17 Mar 2026,123.2486,92.4,1.3343\n"
    )
    provider.route(PATH, FakeResponse(body=body))
    feed = make("boe", provider.url, now=NOW)
    got = pairs(flatten(await drain(feed)))
    assert got[("GBP", "INR", "2026-03-17")] == "123.2486"
    assert got[("GBP", "USD", "2026-03-16")] == "1.3300"
    assert len(got) == 4
    assert feed.problems == ["series 'XUDLBK64' is not a known sterling spot series; its column is skipped"]


async def test_unreadable_cells_and_dates_are_reported(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = b"DATE,XUDLUSS,XUDLERS\n16 Mar 2026,..,1.1880\n17 Mar 2026,1.33x,1.1901\n2026-03-18,1.3,1.1\n"
    provider.route(PATH, FakeResponse(body=body))
    feed = make("boe", provider.url, now=NOW)
    got = pairs(flatten(await drain(feed)))
    assert got == {("GBP", "EUR", "2026-03-16"): "1.1880", ("GBP", "EUR", "2026-03-17"): "1.1901"}
    assert len(feed.problems) == 2
    assert feed.problems[0].startswith("GBP/USD 2026-03-17")
    assert "line 4: date '2026-03-18' is not DD Mon YYYY" in feed.problems[1]


async def test_documentation_written_fixture(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    # boe/iadb.csv is written from the documentation (other tests use it); see the README.
    provider.route(PATH, FakeResponse(body=blob("boe/iadb.csv"), headers={"Content-Type": "text/csv"}))
    obs = flatten(await drain(make("boe", provider.url)))
    query = provider.requests[-1].query
    assert query["SeriesCodes"] == "XUDLUSS,XUDLERS,XUDLJYS,XUDLCDS,XUDLSFS,XUDLADS"
    assert (query["Datefrom"], query["Dateto"]) == ("10/Jan/2025", "now")
    assert pairs(obs)[("GBP", "USD", "2025-01-13")] == "1.2170"
    assert len(obs) == 18
    assert obs[0].observed_at == dt.datetime(2025, 1, 13, 16, 0, tzinfo=dt.UTC)  # GMT


async def test_not_an_iadb_table_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(PATH, FakeResponse(body=b"SERIES,VALUE\nXUDLUSS,1.3\n"))
    with pytest.raises(FeedError, match="not an IADB table"):
        await drain(make("boe", provider.url))


async def test_unknown_configured_series_is_refused(provider: FakeHttpServer, make: MakeFeed) -> None:
    with pytest.raises(FeedError, match="unknown IADB series XUDLBK64"):
        await drain(make("boe", provider.url, series=["XUDLUSS", "XUDLBK64"]))
    assert provider.requests == []
