"""End to end: the four processes started by the same entrypoint as `make run`, checked from outside."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from websockets.asyncio.client import connect

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MeshProcess:
    proc: asyncio.subprocess.Process
    ports: dict[str, int]
    data_dir: Path
    log: list[str] = field(default_factory=list)
    banner: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"


async def start_mesh(data_dir: Path, env_extra: dict[str, str] | None = None) -> MeshProcess:
    ports = {name: free_port() for name in ("gateway", "rates", "validator", "collector")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(env_extra or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kurs_common.mesh",
        "--data-dir",
        str(data_dir),
        *(arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))),
        "--stream-port",
        "0",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    mesh = MeshProcess(proc, ports, data_dir)
    assert proc.stderr is not None
    stderr = proc.stderr

    async def pump() -> None:
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            mesh.log.append(text)
            if text.startswith("kurs: serving"):
                mesh.banner = text

    mesh.pump = asyncio.create_task(pump())  # type: ignore[attr-defined]
    for _ in range(1800):
        if mesh.banner or proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    if not mesh.banner:
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await stop_mesh(mesh)  # never leave four services running behind a failed start
    assert mesh.banner, "mesh did not become ready:\n" + "\n".join(mesh.log[-40:])
    print(mesh.banner)  # the time from an empty data directory to serving all history
    return mesh


async def stop_mesh(mesh: MeshProcess) -> int:
    if mesh.proc.returncode is None:
        mesh.proc.send_signal(signal.SIGINT)
    code = await asyncio.wait_for(mesh.proc.wait(), timeout=30)
    await mesh.pump  # type: ignore[attr-defined]
    return code


def csv_rows(history_csv: str) -> dict[str, dict[str, str]]:
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    out = {}
    for line in lines[1:]:
        cells = line.split(",")
        out[cells[0]] = {c: v for c, v in zip(header[1:], cells[1:], strict=False) if c and v and v != "N/A"}
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MeshProcess]:
    m = await start_mesh(tmp_path_factory.mktemp("e2e") / "var")
    yield m
    with contextlib.suppress(ProcessLookupError):
        await stop_mesh(m)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(mesh: MeshProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.url, timeout=30) as client:
        yield client


async def test_latest_is_the_last_published_day(http: httpx.AsyncClient, history_csv: str) -> None:
    rows = csv_rows(history_csv)
    last = max(rows)
    body = (await http.get("/rates/latest", params={"base": "EUR"})).json()
    assert body["date"] == last
    assert body["rates"] == rows[last]


async def test_sampled_dates_and_weekends_match_the_ecb_file(
    http: httpx.AsyncClient, history_csv: str
) -> None:
    rows = csv_rows(history_csv)
    days = sorted(rows)
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    rng = random.Random(20261127)
    samples = [first + dt.timedelta(days=rng.randrange((last - first).days)) for _ in range(25)]
    samples += [dt.date(2025, 1, 18), dt.date(2025, 1, 19), dt.date(2024, 12, 25), dt.date(1999, 1, 4)]
    for day in samples:
        expected_day = max(d for d in days if d <= day.isoformat())
        body = (await http.get("/rates/historical", params={"date": day.isoformat(), "base": "EUR"})).json()
        assert body["requested_date"] == day.isoformat()
        assert body["date"] == expected_day
        assert body["rates"] == rows[expected_day], day


async def test_cross_rates_and_limits(http: httpx.AsyncClient, history_csv: str) -> None:
    rows = csv_rows(history_csv)
    body = (await http.get("/rates/historical", params={"date": "2008-03-14", "base": "USD"})).json()
    eur = rows["2008-03-14"]
    expected = Decimal(eur["JPY"]) / Decimal(eur["USD"])
    assert abs(Decimal(body["rates"]["JPY"]) - expected) / expected < Decimal("1e-9")
    before = await http.get("/rates/historical", params={"date": "1998-12-31"})
    assert before.status_code == 404
    assert before.json()["invalid_params"][0]["name"] == "date"


async def test_currencies_include_retired_codes(http: httpx.AsyncClient) -> None:
    currencies = (await http.get("/currencies")).json()["currencies"]
    assert len(currencies) == 42
    assert currencies["CYP"] == {
        "name": "Cyprus Pound",
        "first_date": "1999-01-04",
        "last_date": "2007-12-31",
        "active": False,
    }
    assert currencies["EUR"]["name"] == "Euro"


async def test_one_year_timeseries(http: httpx.AsyncClient, history_csv: str) -> None:
    rows = csv_rows(history_csv)
    body = (
        await http.get(
            "/rates/timeseries", params={"start_date": "2025-01-01", "end_date": "2025-12-31", "base": "EUR"}
        )
    ).json()
    expected = sorted(d for d in rows if d.startswith("2025-"))
    assert list(body["rates"]) == expected
    assert all(body["rates"][d] == dict(sorted(rows[d].items())) for d in expected)


async def test_websocket_snapshot(mesh: MeshProcess, history_csv: str) -> None:
    rows = csv_rows(history_csv)
    url = mesh.url.replace("http://", "ws://") + "/ws/rates/stream?symbols=USD,GBP&base=EUR"
    async with connect(url) as ws:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    last = max(rows)
    assert message["type"] == "snapshot"
    assert message["rates"] == {"USD": rows[last]["USD"], "GBP": rows[last]["GBP"]}


async def test_grpc_from_outside(mesh: MeshProcess, history_csv: str) -> None:
    rows = csv_rows(history_csv)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.ports['rates']}") as channel:
        reply = await rates_pb2_grpc.RatesServiceStub(channel).GetLatestRates(
            rates_pb2.GetLatestRatesRequest(base="EUR", symbols=["USD"])
        )
        assert reply.rates[0].value == rows[max(rows)]["USD"]
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        listed = [s.name async for r in responses for s in r.list_services_response.service]
        assert "kurs.rates.v1.RatesService" in listed
    for name, service in (
        ("rates", "kurs.rates.v1.RatesService"),
        ("validator", "kurs.validator.v1.ValidatorService"),
        ("collector", "kurs.collector.v1.CollectorService"),
    ):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.ports[name]}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service)
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_openapi_fuzz_never_errors(mesh: MeshProcess, tmp_path: Path) -> None:
    """Schemathesis generates requests from /openapi.json: no 5xx, documented statuses and bodies only.

    `positive_data_acceptance` is left out on purpose: a well-formed code that is not served
    ("ABC") or a future date is schema-valid yet rightly rejected with a 400 problem.
    """
    cli = Path(sys.executable).parent / "schemathesis"
    proc = await asyncio.create_subprocess_exec(
        str(cli),
        "run",
        f"{mesh.url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "40",
        "--seed",
        "20261127",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # schemathesis keeps its state in ./.schemathesis
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert " passed" in text


async def test_ctrl_c_stops_all_and_restart_adds_no_duplicates(mesh: MeshProcess, history_csv: str) -> None:
    assert await stop_mesh(mesh) == 0
    for port in mesh.ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after Ctrl-C"
    expected_rows = sum(len(r) for r in csv_rows(history_csv).values())
    db = mesh.data_dir / "kurs.sqlite3"

    def count() -> int:
        """The ECB's figures as published; the blended series must hold one row for each too."""
        with contextlib.closing(sqlite3.connect(db)) as conn:
            ecb, blend = (
                int(conn.execute("SELECT count(*) FROM reference_rates WHERE source = ?", (s,)).fetchone()[0])
                for s in ("ecb", "blend")
            )
        assert ecb == blend
        return ecb

    assert count() == expected_rows
    again = await start_mesh(mesh.data_dir)
    try:
        async with httpx.AsyncClient(base_url=again.url, timeout=10) as client:
            sources = (await client.get("/sources")).json()["sources"]
        history = next(s for s in sources if s["id"] == "ecb-history")
        assert history["state"] == "SOURCE_STATE_HEALTHY"
    finally:
        assert await stop_mesh(again) == 0
    assert count() == expected_rows


async def test_replay_source_streams_marked_updates(tmp_path: Path, recent_history_zip: Path) -> None:
    replay = await start_mesh(
        tmp_path / "var",
        {
            "KURS_COLLECTOR_ECB_HISTORY_PATH": str(recent_history_zip),
            "KURS_COLLECTOR_REPLAY_ENABLED": "true",
            "KURS_COLLECTOR_REPLAY_DAYS_PER_SECOND": "10",
        },
    )
    try:
        url = replay.url.replace("http://", "ws://") + "/ws/rates/stream?symbols=USD,JPY&base=EUR"
        async with connect(url) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert first["type"] == "snapshot"
            updates: list[dict[str, Any]] = []
            while len(updates) < 3:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if message["type"] == "update":
                    updates.append(message)
        sequences = [u["sequence"] for u in updates]
        assert sequences == sorted(sequences)
        assert len(set(sequences)) == 3
        async with httpx.AsyncClient(base_url=replay.url) as client:
            latest = (await client.get("/rates/latest", params={"base": "EUR", "symbols": "USD"})).json()
        assert latest["replay"] is True
        assert "replay" in latest["sources"]
    finally:
        assert await stop_mesh(replay) == 0
