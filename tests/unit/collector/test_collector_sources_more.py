"""Norges Bank, CNB, NBP, RBA and the Bank of Russia: unit multipliers, divisors and encodings."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_collector.errors import FeedError
from kurs_collector.fakes import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten
from kurs_common.observation import Observation

UTC = dt.UTC
CNB = (
    "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
    "central-bank-exchange-rate-fixing/daily.txt"
)
CBR = "/scripts/XML_daily.asp"
RBA = "/statistics/tables/csv/f11.1-data.csv"


def values(observations: list[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


async def test_norges_unit_mult(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/data/EXR/B.EUR+USD+JPY+SEK.NOK.SP", FakeResponse(body=blob("norges/exr.csv")))
    feed = make("norges", provider.url, currencies=["EUR", "USD", "JPY", "SEK"])
    obs = flatten(await drain(feed))
    assert provider.requests[-1].query == {"format": "csv", "lastNObservations": "5", "locale": "en"}
    got = values(obs)
    assert got[("EUR", "NOK", "2025-01-15")] == "11.7625"
    assert got[("JPY", "NOK", "2025-01-14")] == "0.072345"  # 7.2345 per 100 yen
    assert got[("SEK", "NOK", "2025-01-15")] == "1.0214"
    assert len(obs) == 7
    assert obs[0].observed_at == dt.datetime(2025, 1, 14, 15, 0, tzinfo=UTC)  # 16:00 Oslo


async def test_norges_range(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(
        "/api/data/EXR/B.EUR+USD+GBP+SEK+DKK+JPY+CHF.NOK.SP", FakeResponse(body=blob("norges/exr.csv"))
    )
    feed = make("norges", provider.url)
    batches = [b async for b in feed.collect_range(dt.date(2025, 1, 15), dt.date(2025, 1, 15))]
    assert provider.requests[-1].query["startPeriod"] == "2025-01-15"
    assert {o.day for o in flatten(batches)} == {"2025-01-15"}


async def test_cnb_amount_divisor(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(CNB, FakeResponse(body=blob("cnb/daily.txt")))
    obs = flatten(await drain(make("cnb", provider.url)))
    got = values(obs)
    assert got[("EUR", "CZK", "2025-01-15")] == "25.240"  # published figure kept
    assert got[("JPY", "CZK", "2025-01-15")] == "0.15613"  # 15.613 per 100
    assert got[("IDR", "CZK", "2025-01-15")] == "0.001496"  # 1.496 per 1000
    assert got[("HUF", "CZK", "2025-01-15")] == "0.06112"
    assert len(obs) == 15
    assert obs[0].observed_at == dt.datetime(2025, 1, 15, 13, 30, tzinfo=UTC)  # 14:30 Prague


async def test_cnb_czech_variant_with_decimal_commas(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = (
        "15.01.2025 #10\nzemě|měna|množství|kód|kurz\nEMU|euro|1|EUR|25,240\nJaponsko|jen|100|JPY|15,613\n"
    ).encode()
    provider.route(CNB, FakeResponse(body=body))
    assert values(flatten(await drain(make("cnb", provider.url)))) == {
        ("EUR", "CZK", "2025-01-15"): "25.240",
        ("JPY", "CZK", "2025-01-15"): "0.15613",
    }


async def test_cnb_range_asks_each_business_day(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(CNB, FakeResponse(body=blob("cnb/daily.txt")))
    feed = make("cnb", provider.url)
    batches = [b async for b in feed.collect_range(dt.date(2025, 1, 10), dt.date(2025, 1, 15))]
    assert [r.query["date"] for r in provider.requests] == [
        "10.01.2025",
        "13.01.2025",
        "14.01.2025",
        "15.01.2025",
    ]
    # The fake answers the same fixing every time: one day, no duplicates, no complaint.
    assert [len(b) for b in batches] == [15]
    assert feed.problems == []


async def test_nbp_tables(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/exchangerates/tables/A/", FakeResponse(body=blob("nbp/table-a.json")))
    provider.route("/api/exchangerates/tables/B/", FakeResponse(body=blob("nbp/table-b.json")))
    a = flatten(await drain(make("nbp-a", provider.url)))
    got = values(a)
    assert got[("USD", "PLN", "2025-01-15")] == "4.1512"
    assert got[("IDR", "PLN", "2025-01-15")] == "0.00025289"  # a JSON number, kept exactly
    assert ("XDR", "PLN", "2025-01-15") not in got  # the SDR is not a currency
    assert len(a) == 11
    b = flatten(await drain(make("nbp-b", provider.url, now=dt.datetime(2025, 1, 16, tzinfo=UTC))))
    assert values(b)[("MGA", "PLN", "2025-01-15")] == "0.000883"
    assert provider.requests[-1].query == {"format": "json"}


async def test_nbp_no_data_is_empty_not_an_error(provider: FakeHttpServer, make: MakeFeed) -> None:
    path = "/api/exchangerates/tables/A/2025-01-18/2025-01-19/"
    provider.route(path, FakeResponse(404, b"404 NotFound - Not Found - Brak danych"))
    feed = make("nbp-a", provider.url)
    assert [b async for b in feed.collect_range(dt.date(2025, 1, 18), dt.date(2025, 1, 19))] == []
    assert feed.problems == []


async def test_nbp_wrong_table(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/exchangerates/tables/A/", FakeResponse(body=blob("nbp/table-b.json")))
    with pytest.raises(FeedError, match="asked for table A, got 'B'"):
        await drain(make("nbp-a", provider.url))


async def test_rba_f11(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(RBA, FakeResponse(body=blob("rba/f11.1-data.csv")))
    obs = flatten(await drain(make("rba", provider.url)))
    got = values(obs)
    assert got[("AUD", "USD", "2025-01-13")] == "0.6163"
    assert got[("AUD", "EUR", "2025-01-15")] == "0.6023"
    assert {o.quote for o in obs} == {"USD", "CNY", "JPY", "EUR"}  # no TWI index, no SDR
    assert len(obs) == 12
    # 4pm Sydney (AEDT, UTC+11) is 05:00 UTC the same day.
    assert obs[0].observed_at == dt.datetime(2025, 1, 13, 5, 0, tzinfo=UTC)


async def test_rba_windows_1252_without_bom(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("rba/f11.1-data.csv").removeprefix(b"\xef\xbb\xbf").replace(b"see notes", b"see notes \xa7")
    provider.route(RBA, FakeResponse(body=body))
    assert len(flatten(await drain(make("rba", provider.url)))) == 12


async def test_rba_na_cells(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("rba/f11.1-data.csv").replace(b"0.6196", b"")
    provider.route(RBA, FakeResponse(body=body))
    got = values(flatten(await drain(make("rba", provider.url))))
    assert ("AUD", "USD", "2025-01-14") not in got
    assert len(got) == 11


async def test_cbr_windows_1251_nominal_and_decimal_comma(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(
        CBR, FakeResponse(body=blob("cbr/XML_daily.xml"), headers={"Content-Type": "application/xml"})
    )
    feed = make("cbr", provider.url, now=dt.datetime(2025, 1, 15, 6, tzinfo=UTC))
    obs = flatten(await drain(feed))
    assert provider.requests[-1].query == {"date_req": "15/01/2025"}
    got = values(obs)
    assert got[("USD", "RUB", "2025-01-15")] == "101.6797"
    assert got[("HKD", "RUB", "2025-01-15")] == "13.04719"  # 130,4719 per 10
    assert got[("JPY", "RUB", "2025-01-15")] == "0.645021"  # per 100
    assert got[("IDR", "RUB", "2025-01-15")] == "0.00624587"  # per 10000
    assert "XDR" not in {o.base for o in obs}
    assert len(obs) == 6
    assert obs[0].observed_at == dt.datetime(2025, 1, 14, 21, 0, tzinfo=UTC)  # 00:00 Moscow


async def test_cbr_utf8_body_declared_windows_1251(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("cbr/XML_daily.xml").decode("cp1251").encode("utf-8")
    provider.route(CBR, FakeResponse(body=body))
    with pytest.raises(FeedError, match="the body is UTF-8 but declares windows-1251"):
        await drain(make("cbr", provider.url))


async def test_cbr_windows_1251_body_declared_utf8(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("cbr/XML_daily.xml").replace(b'encoding="windows-1251"', b'encoding="utf-8"')
    provider.route(CBR, FakeResponse(body=body))
    with pytest.raises(FeedError, match="malformed ValCurs XML"):
        await drain(make("cbr", provider.url))


async def test_cbr_truncated(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml")
    provider.route(CBR, FakeResponse(body=body[: len(body) // 2]))
    with pytest.raises(FeedError, match="truncated"):
        await drain(make("cbr", provider.url))


async def test_cbr_zero_nominal(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    body = blob("cbr/XML_daily.xml").replace(b"<Nominal>10</Nominal>", b"<Nominal>0</Nominal>")
    provider.route(CBR, FakeResponse(body=body))
    with pytest.raises(FeedError, match="unit count 0 must be positive"):
        await drain(make("cbr", provider.url))
