"""Reserve Bank of Australia F11.1: the CSV as recorded from rba.gov.au, parsed digit-exact."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

UTC = dt.UTC
RBA = "/statistics/tables/csv/f11.1-data.csv"
NOW = dt.datetime(2023, 1, 12, 12, 0, tzinfo=UTC)


def values(observations: list[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


def recorded(body: bytes) -> dict[tuple[str, str, str], str]:
    """Every currency cell of the file, read independently of the feed."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    units = next(r for r in rows if r and r[0] == "Units")[1:]
    start = next(i for i, r in enumerate(rows) if r and r[0] == "Series ID") + 1
    out = {}
    for row in rows[start:]:
        day = dt.datetime.strptime(row[0], "%d-%b-%Y").date().isoformat()
        for unit, cell in zip(units, row[1:], strict=True):
            if cell and unit not in ("Index", "SDR"):
                out[("AUD", unit, day)] = cell
    return out


async def test_url_is_the_recorded_one(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("rba", provider.url, now=NOW)
    # frankfurter spec/vcr_cassettes/rba.yml (VCR cassette, the request URI).
    assert feed.fetcher.url_for(feed.latest_requests()[0]).removeprefix(provider.url) == RBA
    assert len(feed.range_requests(dt.date(2023, 1, 1), dt.date(2023, 12, 31))) == 1


async def test_every_recorded_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("rba/f11.1-data.csv")
    provider.route(RBA, FakeResponse(body=body))
    feed = make("rba", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    assert got == recorded(body)
    assert len(got) == 7 * 17  # 23 series minus TWI, SDR and four empty columns (AED, PGK, CAD, ZAR)
    assert got[("AUD", "USD", "2023-01-03")] == "0.6828"
    assert got[("AUD", "JPY", "2023-01-11")] == "91.43"
    assert got[("AUD", "VND", "2023-01-05")] == "16002"
    assert {o for (_, o, _) in got} & {"AED", "PGK", "CAD", "ZAR", "SDR", "Index"} == set()
    assert feed.problems == []


async def test_4pm_sydney(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(RBA, FakeResponse(body=blob("rba/f11.1-data.csv")))
    obs = flatten(await drain(make("rba", provider.url, now=NOW)))
    # 4pm Sydney (AEDT, UTC+11) is 05:00 UTC the same day.
    first = min(obs, key=lambda o: o.day)
    assert first.observed_at == dt.datetime(2023, 1, 3, 5, 0, tzinfo=UTC)


async def test_windows_1252_without_bom(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("rba/f11.1-data.csv").removeprefix(b"\xef\xbb\xbf").replace(b"see notes", b"see notes \xa7")
    provider.route(RBA, FakeResponse(body=body))
    assert len(flatten(await drain(make("rba", provider.url, now=NOW)))) == 7 * 17


async def test_bad_cell_is_reported_not_fatal(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("rba/f11.1-data.csv").replace(b"03-Jan-2023,0.6828,", b"03-Jan-2023,n/a,")
    provider.route(RBA, FakeResponse(body=body))
    feed = make("rba", provider.url, now=NOW)
    got = values(flatten(await drain(feed)))
    assert ("AUD", "USD", "2023-01-03") not in got
    assert len(got) == 7 * 17 - 1
    assert len(feed.problems) == 1
    assert feed.problems[0].startswith("AUD/USD 2023-01-03")


async def test_another_table_is_refused(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(RBA, FakeResponse(body=b"F2  CAPITAL MARKET YIELDS\nTitle,x\n"))
    with pytest.raises(FeedError, match=r"not the F11\.1 table"):
        await drain(make("rba", provider.url, now=NOW))
