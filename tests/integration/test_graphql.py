"""GraphQL over HTTP against the real gateway and rates service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from conftest import running_mesh

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_mesh(tmp_path_factory.mktemp("graphql"), recent_history_zip) as mesh,
        httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as c,
    ):
        yield c


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    reply = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = reply.json()
    return body


async def test_latest_and_historical(client: httpx.AsyncClient, history_csv: str) -> None:
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    row = next(line for line in lines if line.startswith("2025-01-17")).split(",")
    usd = row[header.index("USD")]
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
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    row = next(line for line in lines if line.startswith("2025-01-17")).split(",")
    usd = row[header.index("USD")]
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
