"""POST /rates/convert/bulk against a real rates service holding three real ECB fixings and the
real gateway: 10,000 items streamed in order, exact figures, dated items, per-item problems."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from conftest import ingest_fixing, serve_gateway
from kurs_rates import server as rates_server
from kurs_rates.settings import RatesSettings
from support import ecb_csv

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

DAYS = ("2025-01-15", "2025-01-16", "2025-01-17")
TEN = Context(prec=10, rounding=ROUND_HALF_EVEN)
WIDE = Context(prec=60)
published = functools.cache(ecb_csv.published)  # asked for the same days again and again


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    history_csv: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    path: Path = tmp_path_factory.mktemp("bulk") / "rates.sqlite3"
    rates = await rates_server.start(RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{path}"))
    try:
        for day in DAYS:
            await ingest_fixing(rates.port, day, published(history_csv, day))
        async with (
            serve_gateway(rates.port, 0) as url,
            httpx.AsyncClient(base_url=url, timeout=60) as c,
        ):
            yield c
    finally:
        await rates.stop(0)


def expected(history_csv: str, day: str, amount: str, src: str, dst: str) -> str:
    per_eur = {"EUR": Decimal(1), **{c: Decimal(v) for c, v in published(history_csv, day).items()}}
    rate = per_eur[dst] if src == "EUR" else TEN.divide(per_eur[dst], per_eur[src])
    result = WIDE.multiply(Decimal(amount), rate).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    return format(result, "f")


async def post(client: httpx.AsyncClient, items: list[Any]) -> list[dict[str, Any]]:
    reply = await client.post("/rates/convert/bulk", content=orjson.dumps(items))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in reply.content.splitlines()]


async def test_ten_thousand_items_in_order_and_exact(client: httpx.AsyncClient, history_csv: str) -> None:
    codes = ["USD", "JPY", "GBP", "CHF", "EUR", "PLN", "ZAR", "HUF"]
    items = [
        {"amount": f"{(i * 7919) % 100000}.{i % 100:02d}", "from": codes[i % 8], "to": codes[(i // 8) % 8]}
        for i in range(1, 10_001)
    ]
    items[4321]["amount"] = "0"
    started = time.perf_counter()
    lines = await post(client, items)
    elapsed = time.perf_counter() - started
    assert [line["index"] for line in lines] == list(range(10_000))
    for item, line in zip(items, lines, strict=True):
        if item["amount"] == "0":
            continue  # checked below
        assert line["status"] == 200, line
        want = expected(history_csv, DAYS[-1], item["amount"], item["from"], item["to"])
        assert Decimal(line["result"]) == Decimal(want), (item, line)
    assert lines[4321]["status"] == 400
    assert lines[4321]["problem"]["invalid_params"][0]["name"] == "amount"
    assert elapsed < 10, elapsed


async def test_dated_items_and_their_own_problems(client: httpx.AsyncClient, history_csv: str) -> None:
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    items = [
        {"amount": "100", "from": "USD", "to": "GBP", "date": "2025-01-16"},
        {"amount": "100", "from": "USD", "to": "GBP", "date": "2025-01-18"},  # Saturday: Friday's fixing
        {"amount": "100", "from": "USD", "to": "GBP", "date": "2020-01-02"},  # before the first fixing
        {"amount": "100", "from": "USD", "to": "GBP", "date": future},
        {"amount": "100", "from": "USD", "to": "GBP"},
    ]
    lines = await post(client, items)
    assert lines[0]["result"] == expected(history_csv, "2025-01-16", "100", "USD", "GBP")
    assert lines[0]["date"] == "2025-01-16"
    assert lines[1]["date"] == "2025-01-17"
    assert lines[1]["result"] == expected(history_csv, "2025-01-17", "100", "USD", "GBP")
    assert lines[2]["status"] == 404
    assert lines[2]["problem"]["invalid_params"][0]["name"] == "date"
    assert lines[3]["status"] == 400
    assert lines[3]["problem"]["invalid_params"][0]["name"] == "date"
    assert lines[4]["status"] == 200
    # the same conversion as GET /rates/convert, digit for digit
    single = (await client.get("/rates/convert", params={"from": "USD", "to": "GBP", "amount": "100"})).json()
    assert {k: lines[4][k] for k in single} == single


@pytest.mark.parametrize("body", [b"{}", b"[1,", b"[]"])
async def test_a_body_that_is_not_an_array_is_one_problem(client: httpx.AsyncClient, body: bytes) -> None:
    reply = await client.post("/rates/convert/bulk", content=body)
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["invalid_params"][0]["name"] == "body"


async def test_an_unknown_query_parameter_is_refused(client: httpx.AsyncClient) -> None:
    reply = await client.post("/rates/convert/bulk?x=1", content=b"[]")
    assert reply.status_code == 400
    assert reply.json()["invalid_params"][0]["name"] == "x"
