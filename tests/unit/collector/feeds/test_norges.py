"""Norges Bank: the SDMX `csvdata` answer recorded from data.norges-bank.no, parsed digit-exact."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

UTC = dt.UTC
ALL = "/api/data/EXR/B..NOK.SP"
# frankfurter spec/vcr_cassettes/nb.yml records the request as (VCR cassette, the request URI):
RECORDED = (
    "https://data.norges-bank.no/api/data/EXR/B..NOK.SP"
    "?endPeriod=2026-03-24&format=csvdata&startPeriod=2026-03-16"
)
NOW = dt.datetime(2026, 3, 25, 12, 0, tzinfo=UTC)


def values(observations: list[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


async def test_range_url_is_the_recorded_one(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(ALL, FakeResponse(body=blob("norges/exr.csv")))
    feed = make("norges", provider.url, currencies=[], now=NOW)
    requests = feed.range_requests(dt.date(2026, 3, 16), dt.date(2026, 3, 24))
    assert len(requests) == 1  # a range is one request, however long
    built = feed.fetcher.url_for(requests[0])
    assert built.removeprefix(provider.url) == RECORDED.removeprefix("https://data.norges-bank.no")


async def test_a_year_of_backfill_is_one_request(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("norges", provider.url, now=NOW)
    assert len(feed.range_requests(dt.date(2025, 1, 1), dt.date(2025, 12, 31))) == 1
    url = feed.fetcher.url_for(feed.latest_requests()[0]).removeprefix(provider.url)
    assert url == (
        "/api/data/EXR/B.EUR+USD+GBP+SEK+DKK+JPY+CHF.NOK.SP"
        "?endPeriod=2026-03-25&format=csvdata&startPeriod=2026-03-15"
    )


async def test_every_recorded_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    provider.route(ALL, FakeResponse(body=blob("norges/exr.csv")))
    feed = make("norges", provider.url, currencies=[], now=NOW)
    got = values(flatten(await drain(feed)))
    # The file read independently: every currency row, OBS_VALUE / 10^UNIT_MULT.
    expected = {}
    for row in csv.DictReader(io.StringIO(blob("norges/exr.csv").decode())):
        if row["BASE_CUR"] in ("TWI", "I44", "XDR"):
            continue
        figure = Decimal(row["OBS_VALUE"]).scaleb(-int(row["UNIT_MULT"]))
        expected[(row["BASE_CUR"], "NOK", row["TIME_PERIOD"])] = figure
    assert {k: Decimal(v) for k, v in got.items()} == expected
    assert len(got) == 9 * 7
    # Mapping checked against recorded figures: NOK per unit of the base currency.
    assert got[("USD", "NOK", "2026-03-24")] == "9.7049"
    assert got[("EUR", "NOK", "2026-03-18")] == "11.0205"
    assert got[("JPY", "NOK", "2026-03-16")] == "0.061037"  # 6.1037 per 100 yen
    assert got[("IDR", "NOK", "2026-03-16")] == "0.00057256"  # 0.057256 per 100 rupiah
    assert got[("CHF", "NOK", "2026-03-16")] == "12.3316"  # 1233.16 per 100 francs
    assert got[("DKK", "NOK", "2026-03-17")] == "1.482"  # "148.2" as published
    # TWI and I44 are indices and XDR the SDR: skipped without degrading the source.
    assert {k[0] for k in got} == {"HUF", "DKK", "JPY", "USD", "IDR", "GBP", "EUR", "CHF", "SEK"}
    assert feed.problems == []


async def test_observation_time_is_16_oslo(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(ALL, FakeResponse(body=blob("norges/exr.csv")))
    obs = flatten(await drain(make("norges", provider.url, currencies=[], now=NOW)))
    first = min(obs, key=lambda o: o.day)
    assert first.observed_at == dt.datetime(2026, 3, 16, 15, 0, tzinfo=UTC)  # 16:00 CET


async def test_reordered_columns_bom_and_a_bad_figure(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    rows = list(csv.reader(io.StringIO(blob("norges/exr.csv").decode())))
    order = [*reversed(range(len(rows[0]))), 0]  # reversed, plus a repeated extra column
    shuffled = [[row[i] for i in order] for row in rows]
    shuffled[0][-1] = "EXTRA"
    shuffled[1][0] = "n/a"  # OBS_VALUE of HUF 2026-03-16, now the first column
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(shuffled)
    provider.route(ALL, FakeResponse(body=b"\xef\xbb\xbf" + out.getvalue().encode()))
    feed = make("norges", provider.url, currencies=[], now=NOW)
    got = values(flatten(await drain(feed)))
    assert ("HUF", "NOK", "2026-03-16") not in got
    assert got[("HUF", "NOK", "2026-03-17")] == "0.028514"
    assert len(got) == 9 * 7 - 1
    assert len(feed.problems) == 1
    assert "HUF/NOK 2026-03-16: unreadable figure" in feed.problems[0]


async def test_semicolon_csv_with_labels_still_read(provider: FakeHttpServer, make: MakeFeed) -> None:
    # Written from the `format=csv` documentation (labels next to codes), not a recording.
    body = (
        b"FREQ;Frequency;BASE_CUR;Base Currency;QUOTE_CUR;Quote Currency;TENOR;Tenor;DECIMALS;"
        b"CALCULATED;UNIT_MULT;Unit Multiplier;COLLECTION;Collection Indicator;TIME_PERIOD;OBS_VALUE\n"
        b"B;Business;SEK;Swedish krona;NOK;Norwegian krone;SP;Spot;2;false;2;Hundreds;C;"
        b"ECB concertation time 14:15 CET;2026-03-24;103,76\n"
    )
    provider.route(ALL, FakeResponse(body=body))
    got = values(flatten(await drain(make("norges", provider.url, currencies=[], now=NOW))))
    assert got == {("SEK", "NOK", "2026-03-24"): "1.0376"}
