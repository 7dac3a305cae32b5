"""Bank of Canada Valet FX_RATES_DAILY: a recorded answer, request shapes and tolerance."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import Observation
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten

PATH = "/valet/observations/group/FX_RATES_DAILY/json"
NOW = dt.datetime(2025, 1, 6, 12, 0, tzinfo=dt.UTC)


def pairs(observations: Sequence[Observation]) -> dict[tuple[str, str, str], str]:
    return {(o.base, o.quote, o.day): o.value for o in observations}


def raw_figures(body: bytes) -> dict[tuple[str, str, str], str]:
    """The recorded figures read independently: labels from seriesDetail, "v" strings as written."""
    doc = json.loads(body)
    label = {series: detail["label"].split("/") for series, detail in doc["seriesDetail"].items()}
    return {
        (label[series][0], label[series][1], row["d"]): cell["v"]
        for row in doc["observations"]
        for series, cell in row.items()
        if series != "d"
    }


async def test_recorded_answer_every_figure_digit_exact(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("boc/valet-fx-2024-12-30.json")  # recorded: see tests/fixtures/sources/boc/README.md
    provider.route(PATH, FakeResponse(body=body, headers={"Content-Type": "application/json"}))
    feed = make("boc", provider.url, now=NOW)
    batches = await drain(feed)
    got = pairs(flatten(batches))
    assert got == raw_figures(body)
    assert len(got) == 4 * 23  # 26 series described; MYR, THB, VND discontinued: no figures
    assert got[("USD", "CAD", "2025-01-03")] == "1.4442"  # the BoC's own USD/CAD
    assert got[("JPY", "CAD", "2025-01-03")] == "0.009190"  # trailing zero kept
    assert got[("IDR", "CAD", "2024-12-30")] == "0.000089"
    assert [b[0].day for b in batches] == ["2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03"]
    assert batches[0][0].observed_at == dt.datetime(2024, 12, 30, 21, 30, tzinfo=dt.UTC)  # 16:30 EST
    assert feed.problems == []
    # Latest: the last ten days by start_date (not recent=N, see the module docstring).
    assert provider.requests[-1].query == {"start_date": "2024-12-27"}


async def test_requests_match_recorded_urls(make: MakeFeed) -> None:
    # URLs open-source Valet clients send (source code, not cassettes), e.g.
    # .../valet/observations/group/FX_RATES_DAILY/json?start_date=2017-01-01&end_date=2025-12-31
    feed = make("boc", "https://www.bankofcanada.ca", now=dt.datetime(2017, 1, 13, tzinfo=dt.UTC))
    base = "https://www.bankofcanada.ca/valet/observations/group/FX_RATES_DAILY/json"
    ranged = feed.range_requests(dt.date(2017, 1, 1), dt.date(2025, 12, 31))
    assert [feed.fetcher.url_for(r) for r in ranged] == [f"{base}?start_date=2017-01-01&end_date=2025-12-31"]
    assert [feed.fetcher.url_for(r) for r in feed.latest_requests()] == [f"{base}?start_date=2017-01-03"]


async def test_documentation_written_group_fixture(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    # fx_rates_daily.json is written from the Valet documentation (other tests use it).
    provider.route(PATH, FakeResponse(body=blob("boc/fx_rates_daily.json")))
    obs = flatten(await drain(make("boc", provider.url)))
    assert pairs(obs)[("USD", "CAD", "2025-01-15")] == "1.4360"
    assert len(obs) == 15


async def test_tolerant_of_what_a_real_answer_may_hold(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = json.dumps(
        {
            "groupDetail": {"name": "FX_RATES_DAILY"},
            "seriesDetail": {
                "FXUSDCAD": {"label": "USD/CAD"},
                "FXEURCAD": {"label": "EUR/CAD"},
                "FXODDCAD": {"label": "odd one"},
            },
            "observations": [
                {"d": "2017-01-02", "FXUSDCAD": {"e": -64}},  # a closed day, as Valet writes it
                {"d": "2017-01-03", "FXUSDCAD": {"v": 1.3435}, "FXEURCAD": {"v": "1,3973"}},
                {
                    "d": "2017-01-04",
                    "FXUSDCAD": {"v": "1.3315"},
                    "FXNEWCAD": {"v": "2"},
                    "FXODDCAD": {"v": "1"},
                },
                {"d": "04/01/2017", "FXUSDCAD": {"v": "1.3315"}},
                {"d": "2017-01-05", "FXNEWCAD": {"v": "3"}},
            ],
        }
    ).encode()
    provider.route(PATH, FakeResponse(body=body))
    feed = make("boc", provider.url, now=dt.datetime(2017, 1, 6, tzinfo=dt.UTC))
    got = pairs(flatten(await drain(feed)))
    assert got == {("USD", "CAD", "2017-01-03"): "1.3435", ("USD", "CAD", "2017-01-04"): "1.3315"}
    assert feed.problems[0] == "series FXODDCAD: label 'odd one' is not BASE/QUOTE; skipped"
    assert "EUR/CAD 2017-01-03" in feed.problems[1]
    assert feed.problems[2] == "series FXNEWCAD is not described in seriesDetail; skipped"  # once
    assert "without a readable date" in feed.problems[3]
    assert len(feed.problems) == 4


async def test_not_a_valet_answer_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(PATH, FakeResponse(body=b'{"message": "Series FXCADAFN not found."}'))
    with pytest.raises(FeedError, match="Valet reply without an observations list"):
        await drain(make("boc", provider.url))
