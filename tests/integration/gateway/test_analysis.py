"""/analysis/* against the real mesh loaded with recent ECB history (2024-01-01 on), each figure
checked against an independent computation from the published CSV; bad input is a named 400."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from conftest import running_mesh

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PROBLEM = "application/problem+json"
TEN = Context(prec=10, rounding=ROUND_HALF_EVEN)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_mesh(tmp_path_factory.mktemp("analysis-mesh"), recent_history_zip) as mesh,
        httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30) as c,
    ):
        yield c


def published(history_csv: str, currency: str, first: str, last: str) -> list[tuple[str, str]]:
    lines = history_csv.splitlines()
    column = lines[0].split(",").index(currency)
    rows = [line.split(",") for line in lines[1:]]
    return sorted(
        (r[0], r[column])
        for r in rows
        if first <= r[0] <= last and r[0] >= "2024-01-01" and r[column] not in ("", "N/A")
    )


def usd_based(history_csv: str, currency: str, first: str, last: str) -> list[tuple[str, str]]:
    """Units of `currency` per USD: the ECB's per-EUR figures crossed, rounded to 10 digits."""
    usd = dict(published(history_csv, "USD", first, last))
    out = []
    for day, value in published(history_csv, currency, first, last):
        out.append((day, format(TEN.divide(Decimal(value), Decimal(usd[day])), "f")))
    return out


def assert_problem(reply: httpx.Response, param: str) -> None:
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    assert reply.json()["invalid_params"][0]["name"] == param, reply.json()


async def test_fluctuation_over_a_paged_range_is_exact(client: httpx.AsyncClient, history_csv: str) -> None:
    # 2024-01-01..2026-10-30 is over 366 days: three GetTimeSeries windows
    reply = await client.get(
        "/analysis/fluctuation",
        params={"start_date": "2024-01-01", "end_date": "2026-10-30", "base": "EUR", "symbols": "USD,JPY"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    for code in ("USD", "JPY"):
        points = published(history_csv, code, "2024-01-01", "2026-10-30")
        got = body["rates"][code]
        assert (got["start_date"], got["start_rate"]) == points[0]
        assert (got["end_date"], got["end_rate"]) == points[-1]
        start, end = Fraction(points[0][1]), Fraction(points[-1][1])
        assert Fraction(got["change"]) == end - start
        assert abs(Fraction(got["change_pct"]) - (end - start) / start * 100) <= Fraction(1, 2 * 10**6)
        assert Fraction(got["high"]) == max(Fraction(v) for _, v in points)
    assert body["sources"] == ["ecb"]


async def test_fluctuation_cross_base(client: httpx.AsyncClient, history_csv: str) -> None:
    body = (
        await client.get(
            "/analysis/fluctuation",
            params={"start_date": "2025-03-01", "end_date": "2025-03-31", "symbols": "GBP"},
        )
    ).json()
    points = usd_based(history_csv, "GBP", "2025-03-01", "2025-03-31")
    got = body["rates"]["GBP"]
    assert body["base"] == "USD"
    assert Decimal(got["start_rate"]) == Decimal(points[0][1])
    assert Decimal(got["end_rate"]) == Decimal(points[-1][1])
    assert Decimal(got["change"]) == Decimal(points[-1][1]) - Decimal(points[0][1])


async def test_volatility_with_warm_up(client: httpx.AsyncClient, history_csv: str) -> None:
    reply = await client.get(
        "/analysis/volatility",
        params={
            "start_date": "2025-01-01",
            "end_date": "2025-12-31",
            "base": "EUR",
            "symbols": "USD",
            "window": 21,
        },
    )
    assert reply.status_code == 200, reply.text
    got = reply.json()["rates"]["USD"]
    points = published(history_csv, "USD", "2024-01-01", "2025-12-31")
    prices = [float(v) for _, v in points]
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    start = next(i for i, (d, _) in enumerate(points) if d >= "2025-01-01")
    assert got["volatility"] == pytest.approx(statistics.stdev(returns[start:]) * math.sqrt(252), rel=1e-9)
    first_day = points[start][0]  # warmed up: the first day of the range has its rolling value
    assert got["rolling"][first_day] == pytest.approx(
        statistics.stdev(returns[start - 21 : start]) * math.sqrt(252)
    )
    assert len(got["rolling"]) == len(points) - start


async def test_trend_sma_and_direction(client: httpx.AsyncClient, history_csv: str) -> None:
    reply = await client.get(
        "/analysis/trend",
        params={
            "start_date": "2026-01-01",
            "end_date": "2026-10-30",
            "base": "EUR",
            "symbols": "JPY",
            "fast": 5,
            "slow": 30,
        },
    )
    assert reply.status_code == 200, reply.text
    got = reply.json()["rates"]["JPY"]
    values = [Fraction(v) for _, v in published(history_csv, "JPY", "2024-01-01", "2026-10-30")]
    fast, slow = sum(values[-5:], Fraction(0)) / 5, sum(values[-30:], Fraction(0)) / 30
    assert Fraction(got["fast"]) == pytest.approx(fast, rel=1e-9)
    assert got["fast"] == format(TEN.divide(Decimal(fast.numerator), Decimal(fast.denominator)), "f").rstrip(
        "0"
    ).rstrip(".")
    assert got["direction"] == ("up" if fast > slow else "down")
    assert all(p["slow"] is not None for p in got["series"].values())  # warmed up before the range


async def test_ohlc_monthly_bars(client: httpx.AsyncClient, history_csv: str) -> None:
    reply = await client.get(
        "/analysis/ohlc",
        params={
            "start_date": "2025-01-01",
            "end_date": "2025-03-31",
            "base": "EUR",
            "symbols": "USD",
            "interval": "1mo",
        },
    )
    bars = reply.json()["rates"]["USD"]
    assert [b["period_start"] for b in bars] == ["2025-01-01", "2025-02-01", "2025-03-01"]
    for bar in bars:
        month = [
            v
            for d, v in published(history_csv, "USD", "2025-01-01", "2025-03-31")
            if d.startswith(bar["period_start"][:7])
        ]
        assert (bar["open"], bar["close"], bar["count"]) == (month[0], month[-1], len(month))
        assert bar["high"] == max(month, key=Decimal)
        assert bar["low"] == min(month, key=Decimal)


async def test_forecast_publishes_its_backtest(client: httpx.AsyncClient, history_csv: str) -> None:
    reply = await client.get(
        "/analysis/forecast", params={"base": "EUR", "symbol": "USD", "years": 1, "end_date": "2026-10-30"}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    backtest = body["backtest"]
    points = published(history_csv, "USD", "2024-01-01", "2026-10-30")
    tested = [i for i, (d, _) in enumerate(points) if d >= "2025-10-30"]
    assert backtest["points"] == len(tested)
    walk = sum(abs(Fraction(points[i][1]) - Fraction(points[i - 1][1])) for i in tested) / len(tested)
    assert backtest["random_walk"]["mae"] == pytest.approx(float(walk), rel=1e-12)
    assert body["forecast"]["random_walk"] == points[-1][1]
    assert ("does NOT beat" in body["verdict"]) == (not backtest["beats_random_walk"])
    assert body["numeric"] == "float64"


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        (
            "/analysis/fluctuation",
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "bogus": "1"},
            "bogus",
        ),
        ("/analysis/fluctuation", {"start_date": "2025-02-01", "end_date": "2025-01-01"}, "start_date"),
        ("/analysis/fluctuation", {"start_date": "2010-01-01", "end_date": "2025-01-01"}, "end_date"),
        ("/analysis/fluctuation", {"start_date": "2025-01-01", "end_date": "2025-02-30"}, "end_date"),
        (
            "/analysis/fluctuation",
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "symbols": "XXQ"},
            "symbols",
        ),
        (
            "/analysis/volatility",
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "window": "1"},
            "window",
        ),
        (
            "/analysis/volatility",
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "window": "x"},
            "window",
        ),
        (
            "/analysis/trend",
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "fast": 50, "slow": 20},
            "fast",
        ),
        ("/analysis/trend", {"start_date": "2025-01-01", "end_date": "2025-02-01", "kind": "wma"}, "kind"),
        (
            "/analysis/ohlc",
            {"start_date": "2025-01-01", "end_date": "2025-01-02", "interval": "1m"},
            "symbols",  # intraday bars need the currencies to follow
        ),
        (
            "/analysis/ohlc",
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "interval": "2d"},
            "interval",
        ),
        ("/analysis/forecast", {"symbol": "USD", "base": "USD"}, "symbol"),
        ("/analysis/forecast", {"symbol": "USD", "years": 9}, "years"),
        ("/analysis/forecast", {"base": "EUR"}, "symbol"),
    ],
)
async def test_bad_input_is_a_named_problem(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], param: str
) -> None:
    assert_problem(await client.get(path, params=params), param)


async def test_range_before_the_history_is_not_found(client: httpx.AsyncClient) -> None:
    reply = await client.get(
        "/analysis/fluctuation", params={"start_date": "2020-01-01", "end_date": "2020-12-31"}
    )
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith(PROBLEM)


async def graphql(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post("/graphql", json={"query": query, "variables": variables})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


GQL_FLUCTUATION = """query($s: String!, $e: String!) {
  fluctuation(startDate: $s, endDate: $e, base: "EUR", symbols: ["USD"]) {
    base startDate endDate missing sources
    rates { currency startDate startRate endDate endRate change changePct high highDate low lowDate }
  }
}"""


async def test_graphql_fluctuation_is_the_rest_answer(client: httpx.AsyncClient, history_csv: str) -> None:
    body = await graphql(client, GQL_FLUCTUATION, {"s": "2025-01-01", "e": "2025-12-31"})
    assert "errors" not in body, body
    got = body["data"]["fluctuation"]
    points = published(history_csv, "USD", "2025-01-01", "2025-12-31")
    (usd,) = got["rates"]
    assert (usd["currency"], usd["startRate"], usd["endRate"]) == ("USD", points[0][1], points[-1][1])
    assert Fraction(usd["change"]) == Fraction(points[-1][1]) - Fraction(points[0][1])
    rest = (
        await client.get(
            "/analysis/fluctuation",
            params={
                "start_date": "2025-01-01",
                "end_date": "2025-12-31",
                "base": "EUR",
                "symbols": "USD",
            },
        )
    ).json()
    assert usd["changePct"] == rest["rates"]["USD"]["change_pct"]
    assert (got["base"], got["missing"], got["sources"]) == ("EUR", [], rest["sources"])


async def test_graphql_volatility_trend_and_ohlc_match_rest(client: httpx.AsyncClient) -> None:
    query = """query {
      volatility(startDate: "2025-01-01", endDate: "2025-06-30", base: "EUR", symbols: ["USD"], window: 10) {
        window numeric rates { currency volatility observations returns rolling { date value } }
      }
      trend(startDate: "2025-01-01", endDate: "2025-06-30", base: "EUR", symbols: ["USD"],
            fast: 5, slow: 20, kind: "ema") {
        kind fastWindow slowWindow
        rates { currency direction fast slow rate lastDate series { date fast slow } }
      }
      ohlc(startDate: "2025-01-01", endDate: "2025-03-31", base: "EUR", symbols: ["USD"], interval: "1w") {
        interval rates { currency bars { periodStart open high low close count firstDate lastDate } }
      }
    }"""
    body = await graphql(client, query, {})
    assert "errors" not in body, body
    data = body["data"]
    span = {"start_date": "2025-01-01", "end_date": "2025-06-30", "base": "EUR", "symbols": "USD"}
    vol = (await client.get("/analysis/volatility", params={**span, "window": 10})).json()["rates"]["USD"]
    (gvol,) = data["volatility"]["rates"]
    assert gvol["volatility"] == vol["volatility"]
    assert {p["date"]: p["value"] for p in gvol["rolling"]} == vol["rolling"]
    trend = (
        await client.get("/analysis/trend", params={**span, "fast": 5, "slow": 20, "kind": "ema"})
    ).json()["rates"]["USD"]
    (gtrend,) = data["trend"]["rates"]
    assert (gtrend["direction"], gtrend["fast"], gtrend["slow"]) == (
        trend["direction"],
        trend["fast"],
        trend["slow"],
    )
    assert {p["date"]: {"fast": p["fast"], "slow": p["slow"]} for p in gtrend["series"]} == trend["series"]
    bars = (
        await client.get("/analysis/ohlc", params={**span, "end_date": "2025-03-31", "interval": "1w"})
    ).json()["rates"]["USD"]
    (gohlc,) = data["ohlc"]["rates"]
    assert [
        (b["periodStart"], b["open"], b["high"], b["low"], b["close"], b["count"]) for b in gohlc["bars"]
    ] == [(b["period_start"], b["open"], b["high"], b["low"], b["close"], b["count"]) for b in bars]


@pytest.mark.parametrize(
    ("field", "arguments", "name"),
    [
        ("fluctuation", 'startDate: "2025-02-01", endDate: "2025-01-01"', "startDate"),
        ("fluctuation", 'startDate: "2010-01-01", endDate: "2025-01-01"', "endDate"),
        ("volatility", 'startDate: "2025-01-01", endDate: "2025-02-01", window: 1', "window"),
        ("trend", 'startDate: "2025-01-01", endDate: "2025-02-01", kind: "wma"', "kind"),
        ("trend", 'startDate: "2025-01-01", endDate: "2025-02-01", fast: 30, slow: 20', "fast"),
        ("ohlc", 'startDate: "2025-01-01", endDate: "2025-02-01", interval: "2d"', "interval"),
        ("ohlc", 'startDate: "2025-01-01", endDate: "2025-01-02", interval: "1m"', "symbols"),
        ("fluctuation", 'startDate: "2025-01-01", endDate: "2025-02-01", base: "usd!"', "base"),
    ],
)
async def test_graphql_bad_arguments_name_the_argument(
    client: httpx.AsyncClient, field: str, arguments: str, name: str
) -> None:
    body = await graphql(client, f"{{ {field}({arguments}) {{ base }} }}", {})
    assert body["data"] == {field: None}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": name}, error
