"""Bad input never builds an observation and never crashes: a clear per-source error instead."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

DAILY = "/stats/eurofxref/eurofxref-daily.xml"
BOE = "/boeapps/database/_iadb-fromshowcolumns.asp"
BOC = "/valet/observations/group/FX_RATES_DAILY/json"
H10 = "/datadownload/Output.aspx"
KRAKEN = "/0/public/Ticker"
CNB = (
    "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
    "central-bank-exchange-rate-fixing/daily.txt"
)
# Every HTTP adapter, with the path its latest fetch asks for (options for the request shape).
EVERY_HTTP_SOURCE = [
    ("ecb-daily", DAILY),
    ("ecb-sdmx", "/service/data/EXR/D..EUR.SP00.A"),
    ("boe", BOE),
    ("boc", BOC),
    ("fed-h10", H10),
    ("fed-fred", "/fred/series/observations"),
    ("norges", "/api/data/EXR/B.EUR+USD+GBP+SEK+DKK+JPY+CHF.NOK.SP"),
    ("cnb", CNB),
    ("nbp-a", "/api/exchangerates/tables/A/"),
    ("nbp-b", "/api/exchangerates/tables/B/"),
    ("rba", "/statistics/tables/csv/f11.1-data.csv"),
    ("cbr", "/scripts/XML_daily.asp"),
    ("kraken", KRAKEN),
    ("coinbase", "/products/BTC-USD/ticker"),
    ("binance", "/api/v3/ticker/bookTicker"),
    ("bitstamp", "/api/v2/ticker/btcusd/"),
]
OPTIONS: dict[str, dict[str, Any]] = {
    "fed-fred": {"series": ["DEXUSEU"], "api_key_env": "KURS_TEST_FRED_KEY"},
    "coinbase": {"pairs": ["BTC/USD"]},
    "bitstamp": {"pairs": ["BTC/USD"]},
}


# Serve one answer at `path`, then run `adapter`'s latest fetch against it to the end.
Fetch = Callable[..., Awaitable[list[Sequence[Observation]]]]


@pytest.fixture
def fetch(provider: FakeHttpServer, make: MakeFeed) -> Fetch:
    async def run(
        adapter: str, path: str, answer: FakeResponse, **options: Any
    ) -> list[Sequence[Observation]]:
        provider.route(path, answer)
        feed = make(adapter, provider.url, **OPTIONS.get(adapter, {}), **options)
        feed.ctx.secrets["KURS_TEST_FRED_KEY"] = "test-key"
        return await drain(feed)

    return run


HTML_ERROR = b"""<!DOCTYPE html>
<html><head><title>Bank of England | Database</title></head>
<body><h1>Sorry, the series code XUDLUSS is not available</h1></body></html>
"""


@pytest.mark.parametrize(
    ("adapter", "path", "fixture"),
    [
        ("ecb-daily", DAILY, "ecb/eurofxref-daily.xml"),
        ("boe", BOE, "boe/iadb.csv"),
        ("boc", BOC, "boc/fx_rates_daily.json"),
        ("kraken", KRAKEN, "kraken/ticker.json"),
    ],
)
async def test_body_cut_short_of_its_content_length(
    blob: Blob, fetch: Fetch, adapter: str, path: str, fixture: str
) -> None:
    body = blob(fixture)
    with pytest.raises(FeedError, match=rf"^{adapter}: RemoteProtocolError"):
        await fetch(adapter, path, FakeResponse(body=body, truncate_to=len(body) // 2), retries=1)


@pytest.mark.parametrize(
    ("adapter", "path", "fixture", "message"),
    [
        ("ecb-daily", DAILY, "ecb/eurofxref-daily.xml", "malformed eurofxref XML"),
        ("boc", BOC, "boc/fx_rates_daily.json", "malformed JSON"),
        ("kraken", KRAKEN, "kraken/ticker.json", "malformed JSON"),
        ("boe", BOE, "boe/iadb.csv", "has 4 fields, the header has 7; truncated"),
        ("fed-h10", H10, "fed/h10.csv", "fields, the header has 6; truncated"),
        ("ecb-sdmx", "/service/data/EXR/D..EUR.SP00.A", "ecb/exr-range.csv", "truncated"),
        ("fed-fred", "/fred/series/observations", "fed/fred-DEXUSEU.json", "malformed JSON"),
        (
            "norges",
            "/api/data/EXR/B.EUR+USD+GBP+SEK+DKK+JPY+CHF.NOK.SP",
            "norges/exr.csv",
            "fields, the header has 10",
        ),
        ("cnb", CNB, "cnb/daily.txt", "line 17 has 4 fields, expected 5"),
        ("nbp-a", "/api/exchangerates/tables/A/", "nbp/table-a.json", "malformed JSON"),
        ("rba", "/statistics/tables/csv/f11.1-data.csv", "rba/f11.1-data.csv", "fields, the header has 24"),
        ("coinbase", "/products/BTC-USD/ticker", "coinbase/ticker-BTC-USD.json", "malformed JSON"),
        ("binance", "/api/v3/ticker/bookTicker", "binance/bookTicker.json", "malformed JSON"),
        ("bitstamp", "/api/v2/ticker/btcusd/", "bitstamp/ticker-btcusd.json", "malformed JSON"),
    ],
)
async def test_truncated_file(
    blob: Blob, fetch: Fetch, adapter: str, path: str, fixture: str, message: str
) -> None:
    """A file that ends early but is served whole (correct Content-Length)."""
    body = blob(fixture)
    if adapter == "fed-h10":
        cut = body[: body.index(b"\n2025-01-14") + 16]
    else:
        ends = {"boe": 25, "ecb-sdmx": 60, "norges": 25, "cnb": 10, "rba": 25}
        cut = body[: len(body) - ends[adapter] if adapter in ends else len(body) * 2 // 3]
    with pytest.raises(FeedError, match=message):
        await fetch(adapter, path, FakeResponse(body=cut))


@pytest.mark.parametrize(("adapter", "path"), EVERY_HTTP_SOURCE)
async def test_html_error_page_with_status_200(fetch: Fetch, adapter: str, path: str) -> None:
    answer = FakeResponse(body=HTML_ERROR, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(FeedError, match=rf"^{adapter}: an HTML page instead of data"):
        await fetch(adapter, path, answer)


async def test_html_page_sent_as_text_plain_is_still_refused(
    provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(BOE, FakeResponse(body=HTML_ERROR, headers={"Content-Type": "text/plain"}))
    with pytest.raises(FeedError, match="an HTML page instead of data"):
        await drain(make("boe", provider.url))


@pytest.mark.parametrize(("adapter", "path"), EVERY_HTTP_SOURCE)
async def test_empty_body(fetch: Fetch, adapter: str, path: str) -> None:
    with pytest.raises(FeedError, match=rf"^{adapter}: empty body"):
        await fetch(adapter, path, FakeResponse(body=b""))


async def test_wrong_encoding(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    """IADB CSV is UTF-8/ASCII; a windows-1251 body is an error, not mojibake."""
    body = blob("boe/iadb.csv").replace(b"DATE", "ДАТА".encode("cp1251"))
    provider.route(BOE, FakeResponse(body=body))
    with pytest.raises(FeedError, match=r"wrong encoding|not valid utf-8"):
        await drain(make("boe", provider.url))


async def test_nd_and_missing_cells_are_no_figure(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("boe/iadb.csv").replace(b"1.2214,", b",").replace(b"192.43", b"..")
    provider.route(BOE, FakeResponse(body=body))
    feed = make("boe", provider.url)
    obs = flatten(await drain(feed))
    assert len(obs) == 16
    assert feed.problems == []
    assert ("USD", "2025-01-14") not in {(o.quote, o.day) for o in obs}


async def test_duplicated_date_with_different_values_is_dropped(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("boe/iadb.csv") + b"15 Jan 2025,1.2241,1.1870,191.85,1.7582,1.1170,1.9719\n"
    provider.route(BOE, FakeResponse(body=body))
    feed = make("boe", provider.url)
    obs = flatten(await drain(feed))
    assert ("USD", "2025-01-15") not in {(o.quote, o.day) for o in obs}  # which one is right? neither
    assert next(o for o in obs if o.quote == "EUR" and o.day == "2025-01-15").value == "1.1870"
    assert any("published twice with different values" in p for p in feed.problems)


async def test_unknown_currency_code(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("ecb/eurofxref-daily.xml").replace(b"currency='THB'", b"currency='QQQ'")
    provider.route(DAILY, FakeResponse(body=body))
    feed = make("ecb-daily", provider.url)
    obs = flatten(await drain(feed))
    assert "QQQ" not in {o.quote for o in obs}
    assert len(obs) == 29
    assert feed.problems == ["EUR/QQQ 2025-01-15: 'QQQ' is not an ISO 4217 currency"]


@pytest.mark.parametrize("value", ["0", "-1.0316", "0.0000"])
async def test_zero_or_negative_value(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed, value: str
) -> None:
    body = blob("ecb/eurofxref-daily.xml").replace(b"rate='1.0316'", f"rate='{value}'".encode())
    provider.route(DAILY, FakeResponse(body=body))
    feed = make("ecb-daily", provider.url)
    obs = flatten(await drain(feed))
    assert "USD" not in {o.quote for o in obs}
    assert len(feed.problems) == 1
    assert "must be greater than zero" in feed.problems[0]


async def test_value_that_is_not_a_number_is_refused_alone(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-daily.xml").replace(b"rate='1.0316'", b"rate='1,0316'")
    provider.route(DAILY, FakeResponse(body=body))
    feed = make("ecb-daily", provider.url)
    obs = flatten(await drain(feed))
    # One unreadable figure is a problem of its own; the other 29 of the day still arrive.
    assert "USD" not in {o.quote for o in obs}
    assert len(obs) == 29
    assert [p for p in feed.problems if "not a plain decimal" in p]


async def test_date_far_in_the_future(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("ecb/eurofxref-hist-90d.xml").replace(b"2025-01-14", b"2099-01-14")
    provider.route("/stats/eurofxref/eurofxref-hist-90d.xml", FakeResponse(body=body))
    feed = make("ecb-90d", provider.url)
    obs = flatten(await drain(feed))
    assert {o.day for o in obs} == {"2025-01-13", "2025-01-15"}
    assert len(feed.problems) == 5
    assert all("in the future" in p for p in feed.problems)


async def test_tomorrow_in_the_sources_time_zone_is_allowed(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-daily.xml")
    provider.route(DAILY, FakeResponse(body=body))
    # 23:30 UTC on the 14th is already the 15th in Frankfurt... and the ECB publishes at 16:00.
    feed = make("ecb-daily", provider.url, now=dt.datetime(2025, 1, 14, 23, 30, tzinfo=dt.UTC))
    assert len(flatten(await drain(feed))) == 30


async def test_xml_with_entities_is_refused(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = b"""<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><gesmes:Envelope/>"""
    provider.route(DAILY, FakeResponse(body=body))
    with pytest.raises(FeedError, match="DTD or entities"):
        await drain(make("ecb-daily", provider.url))


async def test_not_the_expected_document(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(DAILY, FakeResponse(body=b"<?xml version='1.0'?><rss><channel/></rss>"))
    with pytest.raises(FeedError, match="not a eurofxref document"):
        await drain(make("ecb-daily", provider.url))


async def test_h10_series_direction_mismatch(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    # A Currency row naming neither currency of the series: that column is refused, not the file.
    body = blob("fed/h10.csv").replace(b'"Currency:","USD","JPY"', b'"Currency:","GBP","JPY"')
    provider.route(H10, FakeResponse(body=body))
    feed = make("fed-h10", provider.url)
    obs = flatten(await drain(feed))
    assert ("EUR", "USD") not in {(o.base, o.quote) for o in obs}
    assert obs
    assert [p for p in feed.problems if "Currency row 'GBP'" in p]


async def test_kraken_error_reply(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(KRAKEN, FakeResponse(body=b'{"error":["EQuery:Unknown asset pair"]}'))
    with pytest.raises(FeedError, match="EQuery:Unknown asset pair"):
        await drain(make("kraken", provider.url))


async def test_kraken_bad_pair_and_crossed_book(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = (
        b'{"error":[],"result":{"QQQZUSD":{"a":["1.1","1","1"],"b":["1.0","1","1"]},'
        b'"ZEURZUSD":{"a":["1.03","1","1"],"b":["1.04","1","1"]},'
        b'"XXBTZUSD":{"a":["97012.4","1","1"],"b":["97012.3","1","1"]}}}'
    )
    provider.route(KRAKEN, FakeResponse(body=body))
    feed = make("kraken", provider.url)
    obs = flatten(await drain(feed))
    assert [(o.base, o.quote) for o in obs] == [("BTC", "USD")]
    assert any("QQQZUSD" in p for p in feed.problems)
    assert any("bid 1.04 above ask 1.03" in p for p in feed.problems)
