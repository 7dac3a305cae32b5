"""Runa's contract and ExchangeRate-API v6 compatibility against a real mesh (one per module)."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh, serve_gateway
from kurs_gateway.routes.runa import CONVERSION_SCHEMA
from support.ecb_csv import published
from support.gateway_http import exact

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

# What every v6 answer carries after "result" (and "provider" on the open endpoint).
V6_HEAD = [
    "documentation",
    "terms_of_use",
    "time_last_update_unix",
    "time_last_update_utc",
    "time_next_update_unix",
    "time_next_update_utc",
]
V6_LATEST_FIELDS = [
    "result",
    *V6_HEAD,
    "base_code",
    "conversion_rates",
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("runa"), recent_history_zip) as m:
        yield m


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as c:
        yield c


# -- Runa's own contract ---------------------------------------------------------------------


async def test_runa_rates_top_level_codes_as_decimal_strings(
    client: httpx.AsyncClient, history_csv: str
) -> None:
    last = history_csv.splitlines()[1][:10]
    ecb = published(history_csv, last)
    # Exactly the query fetch_live_exchange_rates builds: base, then symbols repeated.
    reply = await client.get("/runa/v1/rates?base=EUR&symbols=USD&symbols=GBP")
    assert reply.status_code == 200
    assert reply.json() == {"USD": ecb["USD"], "GBP": ecb["GBP"]}
    comma = (await client.get("/runa/v1/rates", params={"base": "USD", "symbols": "EUR,JPY"})).json()
    assert set(comma) == {"EUR", "JPY"}
    assert all(isinstance(v, str) for v in comma.values())
    converted = (await client.get("/rates/latest", params={"base": "USD", "symbols": "EUR,JPY"})).json()
    assert comma == converted["rates"]


async def test_runa_rates_errors_are_problems(client: httpx.AsyncClient) -> None:
    bad = await client.get("/runa/v1/rates", params={"base": "USD", "symbols": "XXQ"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["invalid_params"][0]["name"] == "symbols"
    unknown = await client.get("/runa/v1/rates", params={"base": "USD", "sybmols": "EUR"})
    assert unknown.status_code == 400


async def test_runa_conversion_rate_has_seven_fields(client: httpx.AsyncClient, history_csv: str) -> None:
    body = (await client.get("/runa/v1/conversion-rate", params={"from": "EUR", "to": "USD"})).json()
    last = history_csv.splitlines()[1][:10]
    assert body["from_currency"] == "EUR"
    assert body["to_currency"] == "USD"
    assert body["exchange_rate"] == published(history_csv, last)["USD"]
    assert body["rate_source"] == "ECB:daily-fix"
    assert body["bid_ask_spread"] is None
    assert body["rate_date"] == last
    assert int(body["rate_timestamp"]) % 1_000_000_000 == 0
    assert Decimal(body["volatility_measure"]) > 0
    assert Decimal(body["volatility_measure"]) < Decimal("0.05")
    assert set(CONVERSION_SCHEMA["required"]) <= set(body)  # the seven, as the description says
    missing = await client.get("/runa/v1/conversion-rate", params={"from": "EUR"})
    assert missing.status_code == 400
    assert missing.json()["invalid_params"][0]["name"] == "to"


# -- ExchangeRate-API v6 ---------------------------------------------------------------------


async def test_v6_latest_fields_and_digits(client: httpx.AsyncClient, history_csv: str) -> None:
    body = exact(await client.get("/v6/any-key/latest/EUR"))
    assert list(body) == V6_LATEST_FIELDS
    assert body["result"] == "success"
    assert body["base_code"] == "EUR"
    last = history_csv.splitlines()[1][:10]
    ecb = published(history_csv, last)
    assert body["conversion_rates"]["EUR"] == 1
    assert {k: str(v) for k, v in body["conversion_rates"].items() if k != "EUR"} == ecb
    assert body["time_next_update_unix"] - body["time_last_update_unix"] == 86400
    parsed = email.utils.parsedate_to_datetime(body["time_last_update_utc"])
    assert int(parsed.timestamp()) == body["time_last_update_unix"]
    assert body["time_last_update_utc"].endswith("+0000")


async def test_v6_open_latest_uses_rates(client: httpx.AsyncClient) -> None:
    body = exact(await client.get("/v6/latest/USD"))
    assert list(body) == [
        "result",
        "provider",
        *V6_HEAD,
        "time_eol_unix",
        "base_code",
        "rates",
    ]
    assert body["time_eol_unix"] == 0
    assert body["rates"]["USD"] == 1
    rest = (await client.get("/rates/latest", params={"base": "USD", "symbols": "EUR"})).json()
    assert str(body["rates"]["EUR"]) == rest["rates"]["EUR"]


async def test_v6_pair_and_amount_match_convert(client: httpx.AsyncClient) -> None:
    plain = exact(await client.get("/v6/k/pair/USD/GBP"))
    assert list(plain) == [
        "result",
        *V6_HEAD,
        "base_code",
        "target_code",
        "conversion_rate",
    ]
    with_amount = exact(await client.get("/v6/k/pair/USD/GBP/123.45"))
    params = {"from": "USD", "to": "GBP", "amount": "123.45"}
    rest = (await client.get("/rates/convert", params=params)).json()
    assert str(with_amount["conversion_rate"]) == rest["rate"]
    assert str(with_amount["conversion_result"]) == rest["result"]
    assert list(with_amount)[-1] == "conversion_result"


async def test_v6_history(client: httpx.AsyncClient, history_csv: str) -> None:
    body = exact(await client.get("/v6/k/history/EUR/2025/1/17"))
    assert list(body) == [
        "result",
        "documentation",
        "terms_of_use",
        "year",
        "month",
        "day",
        "base_code",
        "conversion_rates",
    ]
    assert (body["year"], body["month"], body["day"]) == (2025, 1, 17)
    assert body["conversion_rates"]["USD"] == Decimal(published(history_csv, "2025-01-17")["USD"])
    scaled = exact(await client.get("/v6/k/history/EUR/2025/1/17/10"))
    assert list(scaled)[-3:] == ["base_code", "requested_amount", "conversion_amounts"]
    assert scaled["requested_amount"] == 10
    assert scaled["conversion_amounts"]["EUR"] == 10
    assert scaled["conversion_amounts"]["USD"] == Decimal(published(history_csv, "2025-01-17")["USD"]) * 10


async def test_v6_codes_and_quota(client: httpx.AsyncClient) -> None:
    codes = exact(await client.get("/v6/q-key/codes"))
    assert list(codes) == ["result", "documentation", "terms_of_use", "supported_codes"]
    assert ["USD", "US Dollar"] in codes["supported_codes"]
    assert ["EUR", "Euro"] in codes["supported_codes"]
    quota = exact(await client.get("/v6/q-key/quota"))
    assert list(quota) == [
        "result",
        "documentation",
        "terms_of_use",
        "plan_quota",
        "requests_remaining",
        "refresh_day_of_month",
    ]
    assert quota["plan_quota"] - quota["requests_remaining"] == 1  # the /codes call; /quota is free
    await client.get("/v6/q-key/latest/USD")
    await client.get("/v6/q-key/latest/USD")  # served from the body cache: still counted
    again = exact(await client.get("/v6/q-key/quota"))
    assert again["requests_remaining"] == quota["requests_remaining"] - 2


@pytest.mark.parametrize(
    ("path", "status", "error_type"),
    [
        ("/v6/k/latest/XXQ", 404, "unsupported-code"),
        ("/v6/k/latest/usdollar", 404, "unsupported-code"),
        ("/v6/k/pair/USD/XXQ", 404, "unsupported-code"),
        ("/v6/k/pair/USD/EUR/abc", 400, "malformed-request"),
        ("/v6/k/history/USD/2025/13/1", 400, "malformed-request"),
        ("/v6/k/history/USD/2999/1/1", 404, "no-data-available"),
        ("/v6/k/history/USD/1990/1/1", 404, "no-data-available"),
        ("/v6/k/nonsense", 400, "malformed-request"),
        ("/v6/latest/XXQ", 404, "unsupported-code"),
    ],
)
async def test_v6_errors(client: httpx.AsyncClient, path: str, status: int, error_type: str) -> None:
    reply = await client.get(path)
    assert reply.status_code == status, reply.text
    assert reply.json() == {
        "result": "error",
        "documentation": "/docs",
        "terms-of-use": "/docs",
        "error-type": error_type,
    }


async def test_v6_keys_map_onto_kurs_keys(mesh: Mesh) -> None:
    async with (
        serve_gateway(
            mesh.rates.port,
            mesh.collector.port,
            mesh.validator.port,
            api_keys=["good-key", "old-key"],
            v6_inactive_keys=["old-key"],
            v6_plan_quota=2,
            v6_quota_refresh_day=14,
        ) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as c,
    ):
        wrong = await c.get("/v6/bad-key/latest/USD")
        assert (wrong.status_code, wrong.json()["error-type"]) == (401, "invalid-key")
        inactive = await c.get("/v6/old-key/latest/USD")
        assert (inactive.status_code, inactive.json()["error-type"]) == (403, "inactive-account")
        assert (await c.get("/v6/good-key/latest/USD")).status_code == 200
        assert (await c.get("/v6/good-key/pair/USD/EUR")).status_code == 200
        over = await c.get("/v6/good-key/latest/USD")
        assert (over.status_code, over.json()["error-type"]) == (403, "quota-reached")
        quota = (await c.get("/v6/good-key/quota")).json()
        assert (quota["plan_quota"], quota["requests_remaining"], quota["refresh_day_of_month"]) == (2, 0, 14)
        # Kurs's own routes still want the key in a header.
        assert (await c.get("/rates/latest")).status_code == 401
        assert (await c.get("/rates/latest", headers={"X-API-Key": "good-key"})).status_code == 200
