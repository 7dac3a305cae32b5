"""kurs.analysis.v1.AnalysisService, served by a real gateway beside its HTTP API (issue #12):
every RPC answers what REST /analysis/* answers for the same query (rebuilt here from the typed
response, field by field), bad input is INVALID_ARGUMENT naming the field with REST's reason,
health and reflection are served, and `python -m kurs_gateway` starts and stops the listener
under granian (two workers sharing the port) and uvicorn.

The mesh holds recent ECB history (2024-01-01 on) and a few live ticks of one past day.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from regions.pgcluster import free_port

from kurs.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from support.analysis_grpc import (
    TICK_DAY,
    TICKS,
    Gateway,
    analysis_gateway,
    fluctuation_body,
    ohlc_body,
    rest,
    trend_body,
    volatility_body,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SERVICE = "kurs.analysis.v1.AnalysisService"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    async with analysis_gateway(tmp_path_factory.mktemp("analysis-grpc"), recent_history_zip) as gw:
        yield gw


def _ranged(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if "symbols" in out:
        out["symbols"] = out["symbols"].split(",")
    return out


CASES = [
    {"start_date": "2024-01-01", "end_date": "2026-10-30", "base": "EUR", "symbols": "USD,JPY"},
    {"start_date": "2025-03-01", "end_date": "2025-03-31", "symbols": "GBP,CHF"},  # USD base: crosses
    {"start_date": "2025-06-02", "end_date": "2025-06-06", "base": "EUR"},  # every currency
]


@pytest.mark.parametrize("params", CASES)
async def test_fluctuation_equals_rest(gateway: Gateway, params: dict[str, Any]) -> None:
    reply = await gateway.stub.Fluctuation(analysis_pb2.FluctuationRequest(**_ranged(params)))
    assert len(reply.rates) >= 2
    assert fluctuation_body(reply) == await rest(gateway, "fluctuation", params)


@pytest.mark.parametrize("window", [None, 5, 63])
async def test_volatility_equals_rest(gateway: Gateway, window: int | None) -> None:
    params: dict[str, Any] = {
        "start_date": "2025-01-01",
        "end_date": "2025-12-31",
        "base": "EUR",
        "symbols": "USD,GBP",
    }
    extra: dict[str, Any] = {} if window is None else {"window": window}
    reply = await gateway.stub.Volatility(analysis_pb2.VolatilityRequest(**_ranged(params), **extra))
    assert reply.window == (window or 21)
    assert reply.rates[0].HasField("volatility")
    assert len(reply.rates[0].rolling) > 200
    assert volatility_body(reply) == await rest(gateway, "volatility", {**params, **extra})


@pytest.mark.parametrize("extra", [{}, {"fast": 5, "slow": 30, "kind": "ema"}, {"fast": 1, "slow": 2}])
async def test_trend_equals_rest(gateway: Gateway, extra: dict[str, Any]) -> None:
    params = {"start_date": "2025-09-01", "end_date": "2025-12-31", "symbols": "JPY,GBP"}
    reply = await gateway.stub.Trend(analysis_pb2.TrendRequest(**_ranged(params), **extra))
    assert reply.rates[0].direction in ("up", "down", "flat")
    assert reply.rates[0].series
    assert trend_body(reply) == await rest(gateway, "trend", {**params, **extra})


@pytest.mark.parametrize("interval", [None, "1w", "1mo"])
async def test_ohlc_from_fixings_equals_rest(gateway: Gateway, interval: str | None) -> None:
    params = {"start_date": "2025-01-01", "end_date": "2025-06-30", "base": "EUR", "symbols": "USD,JPY"}
    extra: dict[str, Any] = {} if interval is None else {"interval": interval}
    reply = await gateway.stub.Ohlc(analysis_pb2.OhlcRequest(**_ranged(params), **extra))
    assert reply.final
    assert reply.rates[0].bars
    assert ohlc_body(reply) == await rest(gateway, "ohlc", {**params, **extra})


@pytest.mark.parametrize("interval", ["1m", "1h"])
async def test_ohlc_from_ticks_equals_rest(gateway: Gateway, interval: str) -> None:
    params = {
        "start_date": TICK_DAY,
        "end_date": TICK_DAY,
        "base": "EUR",
        "symbols": "USD",
        "interval": interval,
    }
    reply = await gateway.stub.Ohlc(analysis_pb2.OhlcRequest(**_ranged(params)))
    assert reply.final  # the day is over
    bars = reply.rates[0].bars
    assert (bars[0].open, bars[-1].close) == (TICKS[0][1], TICKS[-1][1])
    assert sum(b.count for b in bars) == len(TICKS)
    assert ohlc_body(reply) == await rest(gateway, "ohlc", params)


RANGE = {"start_date": "2025-01-01", "end_date": "2025-03-31", "base": "EUR", "symbols": "USD"}
# (rpc, query, field the error names); each is also sent to REST, whose problem must name the
# same field with the same reason (REST's own bounds on window/fast/slow are FastAPI's: checked
# by name only).
BAD: list[tuple[str, dict[str, Any], str, bool]] = [
    ("fluctuation", {**RANGE, "start_date": "2025-13-01"}, "start_date", True),
    ("fluctuation", {**RANGE, "end_date": "31.03.2025"}, "end_date", False),
    ("fluctuation", {**RANGE, "start_date": "2025-04-01"}, "start_date", True),
    ("fluctuation", {**RANGE, "start_date": "2010-01-01"}, "end_date", True),
    ("fluctuation", {**RANGE, "base": "EURO"}, "base", False),
    ("fluctuation", {**RANGE, "symbols": "USD,X1"}, "symbols", False),
    ("volatility", {**RANGE, "window": 1}, "window", False),
    ("volatility", {**RANGE, "window": 0}, "window", False),
    ("volatility", {**RANGE, "window": 261}, "window", False),
    ("trend", {**RANGE, "fast": 30, "slow": 20}, "fast", True),
    ("trend", {**RANGE, "kind": "wma"}, "kind", False),
    ("trend", {**RANGE, "slow": 1}, "slow", False),
    ("ohlc", {**RANGE, "interval": "2h"}, "interval", True),
    ("ohlc", {**RANGE, "interval": "1h", "symbols": "", "start_date": "2025-03-31"}, "symbols", True),
    ("ohlc", {**RANGE, "interval": "1h", "start_date": "2025-01-01"}, "end_date", True),
]
REQUESTS = {
    "fluctuation": ("Fluctuation", analysis_pb2.FluctuationRequest),
    "volatility": ("Volatility", analysis_pb2.VolatilityRequest),
    "trend": ("Trend", analysis_pb2.TrendRequest),
    "ohlc": ("Ohlc", analysis_pb2.OhlcRequest),
}


@pytest.mark.parametrize(("path", "query", "field", "same_reason"), BAD)
async def test_bad_input_is_invalid_argument_naming_the_field(
    gateway: Gateway, path: str, query: dict[str, Any], field: str, same_reason: bool
) -> None:
    method, request_type = REQUESTS[path]
    fields = dict(query)
    fields["symbols"] = [s for s in fields["symbols"].split(",") if s]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(gateway.stub, method)(request_type(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    named, _, reason = (caught.value.details() or "").partition(": ")
    assert named == field, caught.value.details()
    problem = await gateway.http.get(f"/analysis/{path}", params={k: v for k, v in query.items() if v != ""})
    assert problem.status_code == 400, problem.text
    invalid = problem.json()["invalid_params"][0]
    assert invalid["name"] == field, problem.text
    if same_reason:
        assert invalid["reason"] == reason


async def test_unknown_currency_is_the_rates_services_status(gateway: Gateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.Fluctuation(analysis_pb2.FluctuationRequest(**_ranged({**RANGE, "base": "XXX"})))
    problem = await gateway.http.get("/analysis/fluctuation", params={**RANGE, "base": "XXX"})
    code = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND}[problem.status_code]
    assert caught.value.code() == code
    assert (caught.value.details() or "").startswith("base: ")


async def test_health_and_reflection(gateway: Gateway) -> None:
    health = health_pb2_grpc.HealthStub(gateway.channel)
    for name in (SERVICE, ""):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(gateway.channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = [s.name async for r in replies for s in r.list_services_response.service]
    assert SERVICE in services


# -- the real entrypoint: granian (two workers, one port) and uvicorn --------------------------
def listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN on `port` (one per SO_REUSEPORT listener; gRPC binds 127.0.0.1 as a
    v4-mapped IPv6 socket, so both tables are read)."""
    rows = [r for t in ("tcp", "tcp6") for r in Path(f"/proc/net/{t}").read_text().splitlines()[1:]]
    return sum(1 for r in rows if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A")


@pytest.mark.parametrize(("server", "workers"), [("granian", 2), ("uvicorn", 1)])
async def test_entrypoint_serves_grpc_and_stops(
    gateway: Gateway, tmp_path: Path, server: str, workers: int
) -> None:
    mesh = gateway.mesh
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KURS_", "OTEL_"))}
    env.update(
        KURS_GATEWAY_HOST="127.0.0.1",
        KURS_GATEWAY_PORT=str(http_port),
        KURS_GATEWAY_STREAM_PORT="",  # the native stream port stays off
        KURS_GATEWAY_SERVER=server,
        KURS_GATEWAY_WORKERS=str(workers),
        KURS_GATEWAY_GRPC_ADDRESS=f"127.0.0.1:{grpc_port}",
        KURS_GATEWAY_RATES_ADDRESS=f"127.0.0.1:{mesh.rates.port}",
        KURS_GATEWAY_VALIDATOR_ADDRESS=f"127.0.0.1:{mesh.validator.port}",
        KURS_GATEWAY_COLLECTOR_ADDRESS=f"127.0.0.1:{mesh.collector.port}",
        KURS_GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        KURS_GATEWAY_LOG_LEVEL="INFO",
    )
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kurs_gateway",
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
            while log.read_text(errors="replace").count("grpc server listening") < workers:
                assert proc.returncode is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                await asyncio.sleep(0.1)
            while True:  # and HTTP, once every lifespan has finished
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{http_port}/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                await asyncio.sleep(0.1)
            params = {"start_date": "2025-03-01", "end_date": "2025-03-31", "base": "EUR", "symbols": "USD"}
            expected = (
                await http.get(f"http://127.0.0.1:{http_port}/analysis/fluctuation", params=params)
            ).json()
        assert listening_sockets(grpc_port) == workers  # one listener per worker, one port
        # Fresh connections: with two workers the kernel spreads them over both listeners.
        for _ in range(6):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = analysis_pb2_grpc.AnalysisServiceStub(channel)
                try:
                    reply = await stub.Fluctuation(
                        analysis_pb2.FluctuationRequest(**_ranged(params)), timeout=10
                    )
                except grpc.aio.AioRpcError as exc:
                    raise AssertionError(
                        f"{exc.code()} {exc.details()}\n{log.read_text(errors='replace')}"
                    ) from exc
                assert fluctuation_body(reply) == expected
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
        # granian exits 0; uvicorn re-raises the SIGTERM it handled, after the lifespan ended.
        text = log.read_text(errors="replace")
        assert proc.returncode in (0, -signal.SIGTERM), text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await analysis_pb2_grpc.AnalysisServiceStub(channel).Fluctuation(
                    analysis_pb2.FluctuationRequest(**_ranged(params)), timeout=2
                )
            assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 5)


async def test_calls_are_in_the_gateways_metrics(gateway: Gateway) -> None:
    await gateway.stub.Fluctuation(analysis_pb2.FluctuationRequest(**_ranged(RANGE)))
    with pytest.raises(grpc.aio.AioRpcError):
        await gateway.stub.Trend(analysis_pb2.TrendRequest(**_ranged({**RANGE, "kind": "wma"})))
    text = (await gateway.http.get("/metrics")).text
    calls = [line for line in text.splitlines() if line.startswith("rpc_server_call_duration_seconds_count{")]
    for method, status in (("Fluctuation", "OK"), ("Trend", "INVALID_ARGUMENT")):
        assert any(f'rpc_method="{method}"' in c and SERVICE in c and status in c for c in calls), calls
