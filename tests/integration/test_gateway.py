"""The public REST API against the real gateway, rates, validator and collector (real gRPC)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh
from support.ecb_csv import published

# Read-only tests share one mesh per module (one event loop for the module).
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PROBLEM = "application/problem+json"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("gateway-mesh"), recent_history_zip) as m:
        yield m


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as c:
        yield c


def assert_problem(reply: httpx.Response, status: int, param: str) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    body = reply.json()
    assert body["status"] == status
    assert body["invalid_params"][0]["name"] == param, body
    assert body["detail"]
    return dict(body)


async def test_latest_eur_base_is_published_digits(client: httpx.AsyncClient, history_csv: str) -> None:
    last_day = history_csv.splitlines()[1][:10]
    reply = await client.get("/rates/latest", params={"base": "EUR"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["date"] == last_day
    assert body["rates"] == published(history_csv, last_day)
    assert body["sources"] == ["ecb"]


async def test_latest_default_base_usd_cross_rates(client: httpx.AsyncClient, history_csv: str) -> None:
    last_day = history_csv.splitlines()[1][:10]
    eur = published(history_csv, last_day)
    body = (await client.get("/rates/latest", params={"symbols": "EUR,GBP,USD"})).json()
    assert body["base"] == "USD"
    assert body["rates"]["USD"] == "1"
    expected_gbp = Decimal(eur["GBP"]) / Decimal(eur["USD"])
    got = Decimal(body["rates"]["GBP"])
    assert abs(got - expected_gbp) / expected_gbp < Decimal("1e-9")
    assert len(body["rates"]["GBP"].replace(".", "").lstrip("0")) <= 10
    assert isinstance(body["rates"]["EUR"], str)


async def test_symbols_comma_and_repeated_are_equivalent(client: httpx.AsyncClient) -> None:
    a = (await client.get("/rates/latest?symbols=GBP,JPY")).json()
    b = (await client.get("/rates/latest?symbols=GBP&symbols=jpy")).json()
    assert a["rates"] == b["rates"]
    assert set(a["rates"]) == {"GBP", "JPY"}


async def test_historical_weekend_answers_previous_business_day(
    client: httpx.AsyncClient, history_csv: str
) -> None:
    reply = await client.get("/rates/historical", params={"date": "2025-01-18", "base": "EUR"})  # a Saturday
    body = reply.json()
    assert body["requested_date"] == "2025-01-18"
    assert body["date"] == "2025-01-17"
    assert body["rates"] == published(history_csv, "2025-01-17")


async def test_historical_out_of_range_dates(client: httpx.AsyncClient) -> None:
    # The integration mesh holds history from 2024-01-02 on.
    assert_problem(await client.get("/rates/historical", params={"date": "2023-06-01"}), 404, "date")
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)).isoformat()
    assert_problem(await client.get("/rates/historical", params={"date": future}), 400, "date")


@pytest.mark.parametrize("bad", ["2025-13-01", "2025-02-30", "yesterday", "2025-1-5", "20250105", ""])
async def test_historical_malformed_dates(client: httpx.AsyncClient, bad: str) -> None:
    assert_problem(await client.get("/rates/historical", params={"date": bad}), 400, "date")


async def test_timeseries_publication_days(client: httpx.AsyncClient, history_csv: str) -> None:
    reply = await client.get(
        "/rates/timeseries", params={"start_date": "2025-01-01", "end_date": "2025-01-31", "base": "EUR"}
    )
    body = reply.json()
    expected_days = sorted(line[:10] for line in history_csv.splitlines()[1:] if line.startswith("2025-01"))
    assert list(body["rates"]) == expected_days
    assert body["rates"]["2025-01-15"] == dict(sorted(published(history_csv, "2025-01-15").items()))


async def test_timeseries_bad_ranges(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.get("/rates/timeseries", params={"start_date": "2025-02-01", "end_date": "2025-01-01"}),
        400,
        "start_date",
    )
    assert_problem(
        await client.get("/rates/timeseries", params={"start_date": "2024-01-01", "end_date": "2025-06-01"}),
        400,
        "end_date",
    )
    assert_problem(
        await client.get("/rates/timeseries", params={"start_date": "2025-01-01"}), 400, "end_date"
    )


async def test_convert_latest_and_dated(client: httpx.AsyncClient, history_csv: str) -> None:
    body = (await client.get("/rates/convert", params={"from": "EUR", "to": "USD", "amount": "100"})).json()
    last_day = history_csv.splitlines()[1][:10]
    usd = published(history_csv, last_day)["USD"]
    assert body["rate"] == usd
    assert Decimal(body["result"]) == Decimal(usd) * 100
    dated = (
        await client.get(
            "/rates/convert", params={"from": "EUR", "to": "USD", "amount": "2.5", "date": "2025-01-18"}
        )
    ).json()
    assert dated["date"] == "2025-01-17"
    assert dated["rate"] == published(history_csv, "2025-01-17")["USD"]
    assert Decimal(dated["result"]) == Decimal(dated["rate"]) * Decimal("2.5")


@pytest.mark.parametrize(
    "amount", ["abc", "-5", "0", "1e3", "1e20", "99999999999999999", "1.123456789", "NaN", ""]
)
async def test_convert_bad_amounts(client: httpx.AsyncClient, amount: str) -> None:
    reply = await client.get("/rates/convert", params={"from": "USD", "to": "EUR", "amount": amount})
    assert_problem(reply, 400, "amount")


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/rates/latest", {"base": "US"}, "base"),
        ("/rates/latest", {"base": "XYZ"}, "base"),
        ("/rates/latest", {"symbols": "GBP,EURO"}, "symbols"),
        ("/rates/latest", {"symbols": "GBP,,JPY"}, "symbols"),
        (
            "/rates/latest",
            {"symbols": ",".join(f"A{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(60))},
            "symbols",
        ),
        ("/rates/latest", {"bogus": "1"}, "bogus"),
        ("/rates/historical", {"date": "2025-01-15", "base": "QQQ"}, "base"),
        ("/rates/convert", {"from": "USD", "amount": "1"}, "to"),
        ("/rates/convert", {"from": "USD", "to": "ZZZ", "amount": "1"}, "to"),
        ("/currencies", {"x": "1"}, "x"),
    ],
)
async def test_bad_parameters_are_named(
    client: httpx.AsyncClient, path: str, params: dict[str, str], param: str
) -> None:
    assert_problem(await client.get(path, params=params), 400, param)


async def test_currencies(client: httpx.AsyncClient) -> None:
    body = (await client.get("/currencies")).json()["currencies"]
    assert body["USD"]["name"] == "US Dollar"
    assert body["EUR"]["first_date"] <= body["USD"]["first_date"]
    assert body["JPY"]["last_date"] >= "2026-01-01"
    # BGN left the ECB's list when Bulgaria adopted the euro (2026-01-01): retired, still listed.
    assert body["BGN"]["active"] is False
    assert all(v["active"] for code, v in body.items() if code != "BGN")


async def test_openapi_and_health(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {
        "/rates/latest",
        "/rates/historical",
        "/rates/timeseries",
        "/rates/convert",
        "/currencies",
    } <= set(spec["paths"])
    assert (await client.get("/healthz")).status_code == 200
    ready = (await client.get("/readyz")).json()
    assert ready["stream_connected"] is True
    sources = (await client.get("/sources")).json()["sources"]
    assert {s["id"] for s in sources} >= {"ecb-history", "replay"}


async def test_cached_body_equals_fresh_body(client: httpx.AsyncClient) -> None:
    first = await client.get("/rates/latest?base=GBP&symbols=USD,JPY")
    second = await client.get("/rates/latest?base=GBP&symbols=USD,JPY")
    assert first.content == second.content
    assert second.headers["content-type"] == "application/json"
