"""History through a rates outage (issue #17): the gateway answers `/rates/historical` and
`/rates/timeseries` it answered before from their last good body, marked stale, instead of 503.

The real services in this process (conftest.running_mesh), a gateway whose fresh-body cache
expires at once (history_cache_seconds=0) so every request reaches the route; rates is then
stopped for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh, serve_gateway

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

HISTORICAL = {"date": "2025-01-17", "base": "EUR", "symbols": "USD,JPY"}
SERIES = {"start_date": "2025-01-06", "end_date": "2025-01-17", "base": "EUR", "symbols": "USD"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("stale"), recent_history_zip) as m:
        yield m


async def test_history_is_served_stale_while_rates_is_down(mesh: Mesh) -> None:
    ports = (mesh.rates.port, mesh.collector.port, mesh.validator.port)
    async with (
        serve_gateway(*ports, history_cache_seconds=0.0) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        fresh_day = await client.get("/rates/historical", params=HISTORICAL)
        fresh_series = await client.get("/rates/timeseries", params=SERIES)
        assert (fresh_day.status_code, fresh_series.status_code) == (200, 200)
        assert "x-kurs-stale" not in fresh_day.headers

        await mesh.rates.stop(0)  # the rates service is gone; the gateway's snapshot stays

        for path, params, fresh in (
            ("/rates/historical", HISTORICAL, fresh_day),
            ("/rates/timeseries", SERIES, fresh_series),
        ):
            for _ in range(3):
                stale = await client.get(path, params=params)
                assert stale.status_code == 200, stale.text
                assert stale.content == fresh.content  # exactly the last good answer
                assert stale.headers["x-kurs-stale"] == "stale-if-error"
                assert stale.headers["warning"].startswith("111")
                assert int(stale.headers["age"]) >= 0
        # Never answered before: nothing to fall back on, the upstream's error as it is.
        unknown = await client.get("/rates/historical", params={**HISTORICAL, "date": "2025-01-10"})
        assert unknown.status_code == 503
        # A bad request is not an upstream failure: still its own 4xx.
        bad = await client.get("/rates/historical", params={**HISTORICAL, "date": "2025-13-01"})
        assert 400 <= bad.status_code < 500
        # The latest rates never needed rates to answer.
        latest = await client.get("/rates/latest", params={"base": "EUR", "symbols": "USD"})
        assert latest.status_code == 200
