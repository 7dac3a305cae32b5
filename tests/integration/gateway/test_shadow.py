"""A/B shadowing of the v6 routes against a deliberately wrong fake upstream on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.types import Receive, Scope, Send

from conftest import Mesh, running_mesh, serve_gateway

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


class FakeUpstream:
    """Answers v6 latest/EUR with the given rates; remembers the paths it was asked."""

    def __init__(self) -> None:
        self.rates: dict[str, Any] = {}
        self.delay = 0.0
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.paths.append(scope["path"])
        await asyncio.sleep(self.delay)
        body = json.dumps({"result": "success", "base_code": "EUR", "conversion_rates": self.rates}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serve(app: FakeUpstream) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", access_log=False, log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("shadow"), recent_history_zip) as m:
        yield m


@contextlib.asynccontextmanager
async def shadowed(mesh: Mesh, fake: FakeUpstream, **shadow: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway of the mesh shadowing `fake` (its `shadow_*` settings), and a client of it."""
    async with (
        serve(fake) as upstream,
        serve_gateway(
            mesh.rates.port, mesh.collector.port, mesh.validator.port, shadow_url=upstream, **shadow
        ) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


async def settle(client: httpx.AsyncClient, compared: int) -> dict[str, Any]:
    for _ in range(200):
        report: dict[str, Any] = (await client.get("/shadow")).json()
        if report["compared"] + report["upstream_errors"] >= compared and report["pending"] == 0:
            return report
        await asyncio.sleep(0.02)
    raise AssertionError(report)


async def test_serve_kurs_counts_divergences(mesh: Mesh) -> None:
    fake = FakeUpstream()
    async with httpx.AsyncClient(base_url=mesh.gateway_url) as plain:
        truth = (await plain.get("/v6/x/latest/EUR")).json()["conversion_rates"]
        assert (await plain.get("/shadow")).json() == {"enabled": False}
    fake.rates = {"EUR": 1, "USD": float(truth["USD"]), "GBP": float(truth["GBP"]) * 1.05, "XAU": 0.0004}
    async with shadowed(mesh, fake, shadow_key="upstream-secret", shadow_tolerance="0.001") as client:
        served = (await client.get("/v6/client-key/latest/EUR")).json()
        assert served["conversion_rates"]["GBP"] == truth["GBP"]  # Kurs's answer, not the upstream's
        report = await settle(client, 1)
        assert fake.paths == ["/v6/upstream-secret/latest/EUR"]
        assert report["serve"] == "kurs"
        assert report["compared"] == 1
        assert report["diverged"] == 1
        assert [d["field"] for d in report["recent"]] == ["conversion_rates.GBP"]
        assert report["missing_codes"] >= 1  # XAU, and the codes the fake leaves out
        await client.get("/v6/client-key/quota")  # not shadowed
        assert len(fake.paths) == 1


async def test_serve_upstream_and_fall_back_within_deadline(mesh: Mesh) -> None:
    fake = FakeUpstream()
    fake.rates = {"EUR": 1, "USD": 2.5}
    async with shadowed(mesh, fake, shadow_serve="upstream", shadow_timeout_seconds=0.5) as client:
        served = (await client.get("/v6/k/latest/EUR")).json()
        assert served["conversion_rates"] == {"EUR": 1, "USD": 2.5}  # the upstream's answer
        report = await settle(client, 1)
        assert report["diverged"] == 1
        assert report["recent"][0]["field"] == "conversion_rates.USD"
        fake.delay = 2.0
        started = asyncio.get_running_loop().time()
        slow = await client.get("/v6/k/latest/EUR")
        assert asyncio.get_running_loop().time() - started < 1.5
        assert slow.json()["conversion_rates"]["USD"] != 2.5  # Kurs's answer after the deadline
        report = await settle(client, 2)
        assert report["upstream_errors"] == 1
