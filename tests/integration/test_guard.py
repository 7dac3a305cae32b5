"""API keys and rate limits in front of the real gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import ingest_fixing, serve_gateway
from kurs_collector.server import CollectorServer
from kurs_rates import server as rates_server
from kurs_rates.server import RatesServer
from kurs_rates.settings import RatesSettings

pytestmark = pytest.mark.integration


async def test_api_keys_and_rate_limit(loaded_mesh: RatesServer, collector_service: CollectorServer) -> None:
    async with serve_gateway(
        loaded_mesh.port,
        collector_service.port,
        api_keys=["s3cret", "other"],
        rate_limit_per_second=1.0,
        rate_limit_burst=3,
    ) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).status_code == 200  # open path
            denied = await client.get("/rates/latest")
            assert denied.status_code == 401
            assert denied.headers["www-authenticate"] == "Bearer"
            assert denied.headers["content-type"] == "application/problem+json"
            assert (await client.get("/rates/latest", headers={"X-API-Key": "wrong"})).status_code == 401
            ok = await client.get("/rates/latest", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
            statuses = [
                (await client.get("/rates/latest", headers={"X-API-Key": "s3cret"})).status_code
                for _ in range(3)
            ]
            assert statuses == [200, 200, 429]
            limited = await client.get("/rates/latest", headers={"X-API-Key": "s3cret"})
            assert int(limited.headers["retry-after"]) >= 1
            assert (await client.get("/rates/latest", headers={"X-API-Key": "other"})).status_code == 200
        ws = url.replace("http://", "ws://") + "/ws/rates/stream?symbols=USD&base=EUR"
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws):
                pass
        assert info.value.response.status_code == 401
        async with connect(ws + "&api_key=other") as socket:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        assert message["type"] == "snapshot"


async def test_rate_limit_cannot_be_dodged_by_rotating_unconfigured_keys(
    loaded_mesh: RatesServer, collector_service: CollectorServer
) -> None:
    async with (
        serve_gateway(
            loaded_mesh.port, collector_service.port, rate_limit_per_second=0.5, rate_limit_burst=2
        ) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        statuses = [
            (await client.get("/rates/latest", headers={"X-API-Key": f"made-up-{i}"})).status_code
            for i in range(5)
        ]
    assert statuses == [200, 200, 429, 429, 429]


async def test_readiness_fails_once_the_rates_stream_stays_down(tmp_path: Path) -> None:
    settings = RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}")
    rates = await rates_server.start(settings)
    stopped = False
    try:
        await ingest_fixing(rates.port, "2026-11-02", {"USD": "1.1"})
        async with (
            serve_gateway(rates.port, 0, stream_grace_seconds=0.5) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            assert (await client.get("/readyz")).status_code == 200
            await rates.stop(0)
            stopped = True
            for _ in range(100):
                reply = await client.get("/readyz")
                if reply.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            assert reply.status_code == 503
            assert "stream" in reply.json()["detail"]
            assert (
                await client.get("/rates/latest", params={"base": "EUR"})
            ).status_code == 200  # still served
    finally:
        if not stopped:
            await rates.stop(0)
