"""GET /rates/timeseries: the series front (ahead of FastAPI) and the FastAPI route give the same
answers. A plain query string is answered by the front; the same query in a form only the route
accepts (spaces around a code) goes through FastAPI: the bodies must be identical.
(tests/unit/gateway/test_series_front.py: which query strings the front takes.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from support.gateway_http import mesh_client

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    async with mesh_client(tmp_path_factory.mktemp("series-front"), recent_history_zip) as c:
        yield c


async def test_front_and_route_give_the_same_bytes(client: httpx.AsyncClient) -> None:
    queries = [
        (
            "start_date=2024-01-02&end_date=2024-12-31&base=USD",
            "start_date=2024-01-02&end_date=2024-12-31&base=+usd+",
        ),
        (
            "start_date=2024-03-01&end_date=2024-03-31&base=EUR&symbols=USD,JPY",
            "start_date=2024-03-01&end_date=2024-03-31&base=eur+&symbols=USD,JPY",
        ),
        (
            "start_date=2024-03-01&end_date=2024-03-31&source=ecb&base=GBP",
            "start_date=2024-03-01&end_date=2024-03-31&source=+ECB+&base=GBP",
        ),
    ]
    for plain, routed in queries:
        front = await client.get(f"/rates/timeseries?{plain}")
        route = await client.get(f"/rates/timeseries?{routed}")
        assert front.status_code == route.status_code == 200, (front.text[:200], route.text[:200])
        assert front.content == route.content
        assert front.headers["content-type"] == route.headers["content-type"] == "application/json"
        assert len(front.json()["rates"]) > 10


async def test_errors_are_the_routes_problems(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/rates/timeseries?start_date=2024-01-02&end_date=2024-02-02&base=XYZ")
    assert unknown.status_code == 400
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "base" in unknown.text
    typo = await client.get("/rates/timeseries?start_date=2024-01-02&end_date=2024-02-02&bse=USD")
    assert typo.status_code == 400
    assert "bse" in typo.text
