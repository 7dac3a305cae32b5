"""GraphQL over HTTP against the real gateway and rates service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh, serve_gateway
from support.ecb_csv import published

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


KEY = "graphql-cost-key-0123456789"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("graphql"), recent_history_zip) as m:
        yield m


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def keyed(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway on the same services, with a key limited to 1 request/s (burst 100)."""
    ports = (mesh.rates.port, mesh.collector.port, mesh.validator.port)
    async with (
        serve_gateway(*ports, api_keys=[KEY], rate_limit_per_second=1.0, rate_limit_burst=100) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers={"X-API-Key": KEY}) as c,
    ):
        yield c


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    reply = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = reply.json()
    return body


async def test_latest_and_historical(client: httpx.AsyncClient, history_csv: str) -> None:
    usd = published(history_csv, "2025-01-17")["USD"]
    body = await gql(
        client,
        """query($d: String!) {
             historical(date: $d, base: "EUR", symbols: ["USD"]) {
               base date requestedDate rates { currency value }
             }
             latest(symbols: ["EUR"]) { base rates { currency value } sources }
           }""",
        d="2025-01-18",
    )
    assert "errors" not in body
    hist = body["data"]["historical"]
    assert hist == {
        "base": "EUR",
        "date": "2025-01-17",
        "requestedDate": "2025-01-18",
        "rates": [{"currency": "USD", "value": usd}],
    }
    assert body["data"]["latest"]["base"] == "USD"
    assert body["data"]["latest"]["sources"] == ["ecb"]


async def test_timeseries_convert_currencies(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        """{ timeseries(startDate: "2025-01-01", endDate: "2025-01-10", symbols: ["EUR"]) { days { date } }
             convert(from: "EUR", to: "USD", amount: "10", date: "2025-01-17") { rate result date }
             currencies { code name active } }""",
    )
    assert "errors" not in body, body
    assert body["data"]["timeseries"]["days"][0] == {"date": "2025-01-02"}
    assert body["data"]["convert"]["date"] == "2025-01-17"
    assert {"code": "EUR", "name": "Euro", "active": True} in body["data"]["currencies"]


async def test_bad_arguments_name_the_field(client: httpx.AsyncClient) -> None:
    body = await gql(client, '{ historical(date: "2025-02-30") { date } }')
    assert body["data"] == {"historical": None}
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "date"}
    both = await gql(client, '{ a: latest(base: "EUR") { base } b: latest(base: "XXX") { base } }')
    assert both["data"] == {"a": {"base": "EUR"}, "b": None}  # one bad field does not sink the other
    assert [e["path"] for e in both["errors"]] == [["b"]]
    body = await gql(client, '{ historical(date: "1990-01-01") { date } }')
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = await gql(client, '{ convert(from: "USD", to: "EUR", amount: "-1") { result } }')
    assert body["errors"][0]["extensions"]["field"] == "amount"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"query": "{ nope }"}, "query"),
        ({"query": "{ latest {"}, "query"),
        ({}, "query"),
        ({"query": "{ latest { base } }", "variables": [1]}, "variables"),
    ],
)
async def test_malformed_requests_are_400_problems(
    client: httpx.AsyncClient, payload: dict[str, Any], param: str
) -> None:
    reply = await client.post("/graphql", json=payload)
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["invalid_params"][0]["name"] == param


async def test_get_queries_and_refuses_mutations(client: httpx.AsyncClient) -> None:
    ok = await client.get("/graphql", params={"query": '{ latest(base: "EUR", symbols: ["USD"]) { base } }'})
    assert ok.json()["data"]["latest"]["base"] == "EUR"
    refused = await client.get("/graphql", params={"query": "mutation { x }"})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"


async def test_source_reaches_the_rates_service(client: httpx.AsyncClient, history_csv: str) -> None:
    usd = published(history_csv, "2025-01-17")["USD"]
    body = await gql(
        client,
        """{ h: historical(date: "2025-01-17", base: "EUR", symbols: ["USD"], source: "ecb") {
               date rates { currency value } sources }
             l: latest(base: "EUR", symbols: ["USD"], source: "ECB") { rates { currency } }
             t: timeseries(startDate: "2025-01-16", endDate: "2025-01-17", base: "EUR", symbols: ["USD"],
                           source: "ecb") { days { date } }
             c: convert(from: "EUR", to: "USD", amount: "1", date: "2025-01-17", source: "ecb") { rate } }""",
    )
    assert "errors" not in body, body
    assert body["data"]["h"]["rates"] == [{"currency": "USD", "value": usd}]
    assert body["data"]["l"]["rates"] == [{"currency": "USD"}]
    assert [d["date"] for d in body["data"]["t"]["days"]] == ["2025-01-16", "2025-01-17"]
    assert body["data"]["c"]["rate"] == usd
    unknown = await gql(client, '{ latest(base: "EUR", source: "no such!") { base } }')
    assert unknown["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "source"}
    missing = await gql(client, '{ historical(date: "2025-01-17", source: "nobody") { base } }')
    assert missing["data"] == {"historical": None}
    assert missing["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "NOT_FOUND")


YEAR = 'startDate: "2025-01-01", endDate: "2025-12-31"'
SYMBOLS = [
    "USD",
    "JPY",
    "GBP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "CZK",
    "PLN",
    "HUF",
    "AUD",
    "CAD",
    "NZD",
    "CNY",
    "HKD",
    "SGD",
    "KRW",
    "INR",
    "BRL",
    "MXN",
]


def aliased(count: int, arguments: str, selection: str = "{ days { date } }") -> str:
    return "{ " + " ".join(f"a{i}: timeseries({arguments}) {selection}" for i in range(count)) + " }"


async def test_a_200_alias_one_year_query_is_refused_before_it_runs(client: httpx.AsyncClient) -> None:
    query = aliased(200, 'startDate:"2025-01-01",endDate:"2025-12-31"', "{days{date}}")
    assert 14_000 < len(query) <= 16_384  # the 14.5 KB query: 5.2 s before the limits
    started = time.monotonic()
    reply = await client.post("/graphql", json={"query": query})
    took = time.monotonic() - started
    assert reply.status_code == 400
    body = reply.json()
    assert body["limit"] == "max_root_fields"
    assert body["invalid_params"][0]["name"] == "query"
    assert "at most 20" in body["detail"]
    assert took < 1.0, took


async def test_cost_and_depth_limits_name_the_limit(client: httpx.AsyncClient) -> None:
    symbols = ", ".join(f'"{c}"' for c in SYMBOLS)
    costly = aliased(15, f'{YEAR}, base: "EUR", symbols: [{symbols}]')  # 15 x 365 x 20 figures
    reply = await client.post("/graphql", json={"query": costly})
    assert reply.status_code == 400
    assert (reply.json()["limit"], reply.json()["cost"]) == ("max_cost", 15 * 365 * 20)
    # The same through a variable and a fragment: counted all the same.
    hidden = (
        "query($s: String!) { ...F } fragment F on Query { "
        + " ".join(
            f'a{i}: timeseries(startDate: $s, endDate: "2025-12-31", symbols: [{symbols}]) {{ base }}'
            for i in range(15)
        )
        + " }"
    )
    reply = await client.post("/graphql", json={"query": hidden, "variables": {"s": "2025-01-01"}})
    assert (reply.status_code, reply.json()["limit"]) == (400, "max_cost")
    deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"
    reply = await client.post("/graphql", json={"query": deep})
    assert (reply.status_code, reply.json()["limit"]) == (400, "max_depth")
    # Below every limit, a query runs as before.
    fine = aliased(3, 'startDate: "2025-01-01", endDate: "2025-01-31", base: "EUR", symbols: ["USD"]')
    body = await gql(client, fine)
    assert "errors" not in body, body
    assert len(body["data"]["a2"]["days"]) > 15


async def test_the_cost_is_charged_to_the_keys_rate_limit(keyed: httpx.AsyncClient) -> None:
    symbols = ", ".join(f'"{c}"' for c in SYMBOLS)
    query = aliased(5, f'{YEAR}, base: "EUR", symbols: [{symbols}]', "{ base }")  # 36,500 figures
    statuses = []
    for _ in range(3):  # 37 tokens each from a bucket of 100, refilled at 1/s
        reply = await keyed.post("/graphql", json={"query": query})
        statuses.append(reply.status_code)
    assert statuses[:2] == [200, 200], statuses
    assert statuses[2] == 429
    assert reply.json()["limit"] == "rate"
    assert int(reply.headers["retry-after"]) >= 1
