"""GET /dashboard in headless Chromium (Debian's `chromium`, installed by tools/ensure_chromium.sh)
against a running mesh: the page fetches live data and its SVG charts show the same figures as
the JSON routes. A screenshot is saved to build/dashboard/dashboard.png (and the test's tmp dir).

Chromium is driven through the DevTools protocol over a WebSocket (no driver, no library).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import shutil
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import ClientConnection, connect

from conftest import Mesh, running_mesh
from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "dashboard"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1440,2100",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class Page:
    """One Chromium page over the DevTools protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in reply:
            raise AssertionError(f"page error: {reply['exceptionDetails']}")
        return reply["result"].get("value")


@contextlib.asynccontextmanager
async def chromium(url: str, profile: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode(errors="replace")
            assert line, "chromium exited before opening DevTools"
            if found := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                port = int(found.group(1))
        drain = asyncio.create_task(proc.stderr.read())
        targets: list[dict[str, Any]] = []
        for _ in range(100):
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5).read()
            )
            targets = [t for t in json.loads(body) if t.get("type") == "page"]
            if targets:
                break
            await asyncio.sleep(0.1)
        async with connect(targets[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024) as ws:
            yield Page(ws)
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, recent_history_zip: Path) -> AsyncIterator[Mesh]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (tools/ensure_chromium.sh)")
        pytest.skip("chromium is not installed: run `bash tools/ensure_chromium.sh`")
    async with running_mesh(tmp_path_factory.mktemp("dashboard"), recent_history_zip) as m:
        yield m


async def _traffic(url: str) -> int:
    """Real requests of several kinds; returns how many rate requests succeeded."""
    ok = 0
    async with httpx.AsyncClient(base_url=url) as client:
        for i in range(120):
            reply = await client.get("/rates/latest", params={"base": "USD", "symbols": "EUR,GBP,JPY"})
            ok += reply.status_code == 200
            if i % 20 == 0:
                ok += (
                    await client.get("/rates/historical", params={"date": "2025-01-15"})
                ).status_code == 200
        assert (await client.get("/rates/latest", params={"base": "XXX"})).status_code == 400
    return ok


async def _anomaly(validator_port: int) -> None:
    """One refused figure, so the anomalies panel has a real record to draw."""
    observed = Timestamp()
    observed.FromDatetime(dt.datetime(2025, 1, 15, 15, tzinfo=dt.UTC))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{validator_port}") as channel:
        await validator_pb2_grpc.ValidatorServiceStub(channel).SubmitObservations(
            validator_pb2.SubmitObservationsRequest(
                observations=[
                    common_pb2.Observation(
                        source="ecb",
                        feed="dashboard-test",
                        kind=common_pb2.OBSERVATION_KIND_REFERENCE,
                        base="EUR",
                        quote="USD",
                        value="-1.0386",
                        date="2025-01-15",
                        observed_at=observed,
                    )
                ]
            )
        )


async def test_dashboard_renders_live_charts_with_real_values(mesh: Mesh, tmp_path: Path) -> None:
    served = await _traffic(mesh.gateway_url)
    await _anomaly(mesh.validator.port)
    async with httpx.AsyncClient(base_url=mesh.gateway_url) as client:
        usd = (await client.get("/quality", params={"currency": "USD"})).json()
        anomalies = (await client.get("/anomalies", params={"page_size": 200})).json()["anomalies"]
    assert anomalies, "the refused figure should be recorded"

    async with chromium(f"{mesh.gateway_url}/dashboard", tmp_path / "profile") as page:
        await page.call("Runtime.enable")
        ready = (
            "(() => { const s = window.kursDashboard; return !!s && s.samples.length >= 3"
            " && s.updates.sources > 0 && s.updates.accuracy > 0 && s.updates.anomalies > 0; })()"
        )
        for _ in range(300):
            if await page.evaluate(ready):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(
                f"no live data: {await page.evaluate('JSON.stringify(window.kursDashboard)')}"
            )
        await page.call(
            "Emulation.setDeviceMetricsOverride", width=1440, height=2100, deviceScaleFactor=1, mobile=False
        )
        shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        drawn = json.loads(await page.evaluate(DRAWN))
        errors = await page.evaluate("JSON.stringify(window.kursDashboard.errors)")

    png = base64.b64decode(shot["data"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard.png").write_bytes(png)
    (tmp_path / "dashboard.png").write_bytes(png)
    assert png.startswith(b"\x89PNG")
    assert len(png) > 20_000
    assert errors == "{}"

    # Throughput: a line per series, the total first.
    assert drawn["series"][0] == "all routes"
    assert len(drawn["series"]) >= 2
    # Latency: /rates/latest timed with every request this test made (and p50 <= p99, both real).
    latest = drawn["latency"]["/rates/latest"]
    assert latest["requests"] >= 120
    assert 0 < latest["p50"] <= latest["p99"] < 1000
    # Accuracy: the published USD figure as /quality gives it, with its contributors plotted.
    assert drawn["accuracy"]["USD"]["value"] == usd["value"]
    plotted = [*usd["contributors"], *(e for e in usd.get("excluded", []) if e.get("value"))]
    assert drawn["accuracy"]["USD"]["sources"] == sorted(c["source"] for c in plotted)
    # Sources: the offline history feed delivered and is healthy.
    assert drawn["sources"]["ecb-history"]["state"] == "healthy"
    # Anomalies: one bar per reason, counted as /anomalies lists them.
    expected: dict[str, int] = {}
    for a in anomalies:
        expected[a["reason"]] = expected.get(a["reason"], 0) + 1
    assert drawn["anomalies"] == expected
    # Cost: both providers priced, the KPI counts at least the rate requests made here.
    assert {p["name"] for p in drawn["cost"]} == {"ExchangeRate-API", "Open Exchange Rates"}
    assert all(p["plan"] and p["usd"] for p in drawn["cost"])
    assert int(drawn["served"].replace(",", "")) >= served


DRAWN = """JSON.stringify((() => {
  const q = (sel) => Array.from(document.querySelectorAll(sel));
  const latency = {};
  for (const g of q('#chart-latency g[data-route]')) latency[g.dataset.route] = {
    requests: Number(g.dataset.requests), p50: Number(g.dataset.p50), p99: Number(g.dataset.p99) };
  const accuracy = {};
  for (const g of q('#chart-accuracy g[data-currency]')) accuracy[g.dataset.currency] = {
    value: g.dataset.value,
    sources: Array.from(g.querySelectorAll('[data-source]')).map((d) => d.dataset.source).sort() };
  const sources = {};
  for (const g of q('#chart-sources g[data-feed]')) sources[g.dataset.feed] = { state: g.dataset.state };
  const anomalies = {};
  for (const g of q('#chart-anomalies g[data-label]')) anomalies[g.dataset.label] = Number(g.dataset.value);
  return {
    series: q('#chart-throughput path[data-series]').map((p) => p.dataset.series),
    latency, accuracy, sources, anomalies,
    cost: q('#chart-cost g[data-provider]').map((g) => ({
      name: g.dataset.provider, plan: g.dataset.plan, usd: g.dataset.usd })),
    served: document.getElementById('kpi-served').textContent,
  };
})())"""
