"""Compatibility routes keep the other APIs' shapes and our exact digits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from support.ecb_csv import published
from support.gateway_http import exact, mesh_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with mesh_client(tmp_path_factory.mktemp("compat"), recent_history_zip) as c:
        yield c


async def test_frankfurter_latest_and_amount(client: httpx.AsyncClient, history_csv: str) -> None:
    last = history_csv.splitlines()[1][:10]
    body = exact(await client.get("/frankfurter/latest", params={"symbols": "USD,GBP"}))
    assert body["base"] == "EUR"
    assert body["date"] == last
    assert body["rates"] == {
        k: Decimal(v) for k, v in published(history_csv, last).items() if k in ("USD", "GBP")
    }
    scaled = exact(
        await client.get("/frankfurter/v1/latest", params={"from": "EUR", "to": "USD", "amount": "10"})
    )
    assert scaled["rates"] == {"USD": Decimal(published(history_csv, last)["USD"]) * 10}


async def test_frankfurter_date_and_range(client: httpx.AsyncClient, history_csv: str) -> None:
    day = exact(await client.get("/frankfurter/2025-01-18"))
    assert day["date"] == "2025-01-17"
    assert day["rates"] == {k: Decimal(v) for k, v in published(history_csv, "2025-01-17").items()}
    series = exact(await client.get("/frankfurter/2025-01-01..2025-01-10", params={"symbols": "USD"}))
    assert series["start_date"] == "2025-01-02"
    assert series["end_date"] == "2025-01-10"
    assert series["rates"]["2025-01-02"] == {"USD": Decimal(published(history_csv, "2025-01-02")["USD"])}
    bad = await client.get("/frankfurter/2025-13-01")
    assert bad.status_code == 400
    assert bad.json()["invalid_params"][0]["name"] == "period"


async def test_frankfurter_currencies(client: httpx.AsyncClient) -> None:
    body = (await client.get("/frankfurter/currencies")).json()
    assert body["USD"] == "US Dollar"


async def test_openexchangerates(client: httpx.AsyncClient, history_csv: str) -> None:
    latest = exact(
        await client.get("/openexchangerates/api/latest.json", params={"app_id": "x", "symbols": "EUR"})
    )
    assert latest["base"] == "USD"
    assert isinstance(latest["timestamp"], Decimal)
    eur_usd = Decimal(published(history_csv, history_csv.splitlines()[1][:10])["USD"])
    assert abs(latest["rates"]["EUR"] - 1 / eur_usd) < Decimal("1e-9")
    hist = exact(
        await client.get("/openexchangerates/api/historical/2025-01-17.json", params={"base": "EUR"})
    )
    assert hist["rates"] == {k: Decimal(v) for k, v in published(history_csv, "2025-01-17").items()}
    names = (await client.get("/openexchangerates/api/currencies.json")).json()
    assert names["EUR"] == "Euro"
    unknown = await client.get("/openexchangerates/api/latest.json", params={"callback": "x"})
    assert unknown.status_code == 400


@pytest.mark.parametrize(("amount", "literal"), [(".5", "0.5"), ("007", "7"), ("1.", "1"), ("2.50", "2.5")])
async def test_frankfurter_amount_is_a_valid_json_number(
    client: httpx.AsyncClient, amount: str, literal: str
) -> None:
    reply = await client.get("/frankfurter/latest", params={"amount": amount, "symbols": "USD"})
    body = exact(reply)  # parses: the body is valid JSON
    assert reply.text.startswith(f'{{"amount":{literal},')
    assert body["amount"] == Decimal(literal)
