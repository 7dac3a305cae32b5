"""Federal Reserve H.10: FRED series observations and the Data Download Program CSV.

No recorded FRED or DDP answer with a citable origin was found (see the fixture README): the
fixtures are written from the documentation and marked so. The DDP header shape of today's
package downloads (a "Currency:" row naming the foreign currency, "Unit:" = "Currency") is
the one open-source H.10 clients' test data show; older downloads name the currency of the
figure there ("Currency:_Per_EUR" / "USD"). Both are read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from kurs_collector.errors import FeedError
from kurs_collector.feeds.fed import FRED_SERIES
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

H10 = "/datadownload/Output.aspx"
FRED = "/fred/series/observations"


def pairs(observations: Sequence[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


def fred(make: MakeFeed, url: str, **options: Any) -> Any:
    feed = make("fed-fred", url, api_key_env="TEST_FRED_KEY", **options)
    feed.ctx.secrets["TEST_FRED_KEY"] = "test-key"
    return feed


# --- FRED ----------------------------------------------------------------------------------
async def test_fred_documentation_written_fixtures(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        assert request.query["api_key"] == "test-key"
        return FakeResponse(body=blob(f"fed/fred-{request.query['series_id']}.json"))

    provider.route(FRED, handler)
    batches = await drain(fred(make, provider.url, series=["DEXUSEU", "DEXJPUS"]))
    got = pairs(flatten(batches))
    assert got[("EUR", "USD", "2025-01-13")] == "1.0245"  # DEXUSEU: US dollars to one euro
    assert got[("USD", "JPY", "2025-01-16")] == "155.21"  # DEXJPUS: yen to one US dollar
    assert ("EUR", "USD", "2025-01-17") not in got  # "." is no figure
    assert [sorted(o.quote for o in b) for b in batches] == [["JPY", "USD"]] * 4
    assert batches[0][0].observed_at == dt.datetime(2025, 1, 13, 17, 0, tzinfo=dt.UTC)  # noon NY


def test_every_h10_series_on_fred_with_its_direction() -> None:
    dollar_per_unit = {"DEXUSEU": "EUR", "DEXUSUK": "GBP", "DEXUSAL": "AUD", "DEXUSNZ": "NZD"}
    assert len(FRED_SERIES) == 23
    for series, (base, quote) in FRED_SERIES.items():
        if series in dollar_per_unit:
            assert (base, quote) == (dollar_per_unit[series], "USD")
        else:
            assert base == "USD"
            assert series.startswith("DEX")
            assert series.endswith("US")
    assert FRED_SERIES["DEXMAUS"] == ("USD", "MYR")
    assert FRED_SERIES["DEXSLUS"] == ("USD", "LKR")
    assert FRED_SERIES["DEXTAUS"] == ("USD", "TWD")


async def test_fred_request_matches_recorded_url(make: MakeFeed) -> None:
    # Parameter order public FRED clients send (source code, not a cassette):
    # series_id, api_key, file_type, observation_start, observation_end.
    feed = fred(make, "https://api.stlouisfed.org", series=list(FRED_SERIES))
    requests = feed.range_requests(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert len(requests) == 23  # a year's backfill: one request per series
    assert feed.fetcher.url_for(requests[0]) == (
        "https://api.stlouisfed.org/fred/series/observations?series_id=DEXUSEU&api_key=test-key"
        "&file_type=json&observation_start=2024-01-01&observation_end=2024-12-31"
    )


async def test_fred_unreadable_rows_are_reported(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = (
        b'{"observations":[{"date":"2025-01-13","value":"1.0245"},{"date":"2025-01-14","value":"1,03"},'
        b'{"date":"13/01/2025","value":"1.0"},{"value":"1.0"},{"date":"2025-01-15","value":"."}]}'
    )
    provider.route(FRED, FakeResponse(body=body))
    feed = fred(make, provider.url, series=["DEXUSEU"])
    assert pairs(flatten(await drain(feed))) == {("EUR", "USD", "2025-01-13"): "1.0245"}
    assert len(feed.problems) == 3


async def test_fred_error_reply_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = b'{"error_code":400,"error_message":"Bad Request.  The series does not exist."}'
    provider.route(FRED, FakeResponse(body=body))
    with pytest.raises(FeedError, match="The series does not exist"):
        await drain(fred(make, provider.url, series=["DEXUSEU"]))


async def test_fred_without_api_key_fails_clearly(provider: FakeHttpServer, make: MakeFeed) -> None:
    with pytest.raises(FeedError, match="no FRED API key: set KURS_TEST_NO_SUCH_KEY"):
        await drain(make("fed-fred", provider.url, api_key_env="KURS_TEST_NO_SUCH_KEY"))
    assert provider.requests == []


async def test_fred_api_key_never_appears_in_errors(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(FRED, FakeResponse(500, b"oops"))
    feed = make("fed-fred", provider.url, series=["DEXUSEU"], api_key_env="TEST_FRED_KEY")
    feed.ctx.secrets["TEST_FRED_KEY"] = "s3cret-key"
    with pytest.raises(FeedError) as caught:
        await drain(feed)
    assert "api_key=***" in str(caught.value)
    assert "s3cret-key" not in str(caught.value)


# --- Data Download Program ---------------------------------------------------------------------
async def test_h10_documentation_written_fixture(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(H10, FakeResponse(body=blob("fed/h10.csv")))
    feed = make("fed-h10", provider.url)
    got = pairs(flatten(await drain(feed)))
    assert got[("EUR", "USD", "2025-01-14")] == "1.0309"  # RXI$US: US$ per euro
    assert got[("USD", "JPY", "2025-01-14")] == "157.78"  # RXI: yen per US$
    assert not [k for k in got if k[2] == "2025-01-17"]  # ND
    assert len(got) == 20
    assert feed.problems == []


async def test_h10_package_header_shape(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = (
        b'"Series Description","Australian Dollar","Euro-Area Euro","Japanese Yen","Venezuelan Bolivar"\n'
        b'"Unit:","Currency","Currency","Currency","Currency"\n'
        b'"Multiplier:","1","1","1","1"\n'
        b'"Currency:","AUD","EUR","JPY","VEB"\n'
        b'"Unique Identifier:","H10/H10/RXI$US_N.B.AL","H10/H10/RXI$US_N.B.EU","H10/H10/RXI_N.B.JA",'
        b'"H10/H10/RXI_N.B.VES"\n'
        b'"Time Period","RXI$US_N.B.AL","RXI$US_N.B.EU","RXI_N.B.JA","RXI_N.B.VES"\n'
        b"2026-09-30,0.6952,1.1345,157.2500,856.9152\n"
        b"2026-10-01,0.6911,1.1232,ND,858.0249\n"
    )
    provider.route(H10, FakeResponse(body=body))
    feed = make("fed-h10", provider.url, now=dt.datetime(2026, 10, 5, tzinfo=dt.UTC))
    got = pairs(flatten(await drain(feed)))
    assert got == {
        ("AUD", "USD", "2026-09-30"): "0.6952",
        ("EUR", "USD", "2026-09-30"): "1.1345",
        ("USD", "JPY", "2026-09-30"): "157.2500",
        ("AUD", "USD", "2026-10-01"): "0.6911",
        ("EUR", "USD", "2026-10-01"): "1.1232",
    }
    assert feed.problems == ["series 'RXI_N.B.VES' is not a known H.10 exchange rate; its column is skipped"]


async def test_h10_contradicting_currency_row_skips_that_series(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("fed/h10.csv").replace(b'"Currency:","USD","JPY"', b'"Currency:","GBP","JPY"')
    provider.route(H10, FakeResponse(body=body))
    feed = make("fed-h10", provider.url)
    got = pairs(flatten(await drain(feed)))
    assert "EUR" not in {k[0] for k in got}
    assert len(got) == 16
    assert len(feed.problems) == 1
    assert "RXI$US_N.B.EU: Currency row 'GBP'" in feed.problems[0]


async def test_h10_requests_match_recorded_urls(make: MakeFeed) -> None:
    # The DDP link public clients use for this package (source code, not a cassette):
    # ...?rel=H10&series=60f32914ab61dfab590e0e470153e3ae&lastobs=10&from=&to=&filetype=csv
    #    &label=include&layout=seriescolumn&type=package
    feed = make("fed-h10", "https://www.federalreserve.gov")
    base = "https://www.federalreserve.gov/datadownload/Output.aspx?rel=H10&series=60f32914ab61dfab590e0e470153e3ae"
    assert feed.fetcher.url_for(feed.latest_requests()[0]) == (
        f"{base}&lastobs=10&from=&to=&filetype=csv&label=include&layout=seriescolumn&type=package"
    )
    ranged = feed.range_requests(dt.date(1971, 1, 1), dt.date(2024, 10, 9))
    assert len(ranged) == 1
    assert feed.fetcher.url_for(ranged[0]) == (
        f"{base}&lastobs=&from=01/01/1971&to=10/09/2024&filetype=csv&label=include&layout=seriescolumn&type=package"
    )


async def test_h10_not_a_ddp_table_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(H10, FakeResponse(body=b"date,value\n2025-01-13,1.0\n"))
    with pytest.raises(FeedError, match="without its 'Time Period' header row"):
        await drain(make("fed-h10", provider.url))
