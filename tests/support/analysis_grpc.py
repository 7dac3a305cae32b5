"""Harness of tests/integration/gateway/test_analysis_grpc.py: a mesh with recent ECB history and a
few live ticks of one past day behind a gateway serving HTTP and AnalysisService gRPC, and the typed
analysis responses rebuilt in REST's shape (independently of the gateway's own conversion).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp
from regions.pgcluster import free_port

from conftest import Mesh, running_mesh, serve_gateway
from kurs.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc

TICK_DAY = "2026-11-30"
TICKS = [("12:00:05", "1.0500"), ("12:00:20", "1.0512"), ("12:07:00", "1.0530"), ("13:01:00", "1.0498")]


@dataclass
class Gateway:
    http: httpx.AsyncClient
    stub: analysis_pb2_grpc.AnalysisServiceStub
    channel: grpc.aio.Channel
    mesh: Mesh


async def _ingest_ticks(rates_port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates_port}") as channel:
        stub = ingest_pb2_grpc.RatesIngestServiceStub(channel)
        for clock, value in TICKS:
            stamp = Timestamp()
            stamp.FromDatetime(dt.datetime.fromisoformat(f"{TICK_DAY}T{clock}+00:00"))
            await stub.IngestRates(
                ingest_pb2.IngestRatesRequest(
                    rates=[
                        ingest_pb2.AcceptedRate(
                            source="kraken",
                            kind=common_pb2.OBSERVATION_KIND_LIVE,
                            base="EUR",
                            currency="USD",
                            value=value,
                            date=TICK_DAY,
                            observed_at=stamp,
                        )
                    ]
                )
            )


@contextlib.asynccontextmanager
async def analysis_gateway(data_dir: Path, history_zip: Path) -> AsyncIterator[Gateway]:
    """A mesh holding `history_zip` and TICKS, and a gateway serving HTTP and AnalysisService gRPC."""
    async with running_mesh(data_dir, history_zip) as mesh:
        await _ingest_ticks(mesh.rates.port)
        address = f"127.0.0.1:{free_port()}"
        async with (
            serve_gateway(
                mesh.rates.port, mesh.collector.port, mesh.validator.port, grpc_address=address
            ) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
            grpc.aio.insecure_channel(address) as channel,
        ):
            yield Gateway(http, analysis_pb2_grpc.AnalysisServiceStub(channel), channel, mesh)


# -- the typed responses rebuilt in REST's shape (independently of the gateway's conversion) --
def _common(reply: Any) -> dict[str, Any]:
    body = {"base": reply.base, "start_date": reply.start_date, "end_date": reply.end_date}
    return body


def _tail(body: dict[str, Any], reply: Any) -> dict[str, Any]:
    body["sources"] = list(reply.sources)
    if reply.missing:
        body["missing"] = list(reply.missing)
    return body


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def fluctuation_body(reply: analysis_pb2.FluctuationResponse) -> dict[str, Any]:
    names = [f.name for f in analysis_pb2.Fluctuation.DESCRIPTOR.fields if f.name != "currency"]
    body = _common(reply)
    body["rates"] = {r.currency: {n: getattr(r, n) for n in names} for r in reply.rates}
    return _tail(body, reply)


def volatility_body(reply: analysis_pb2.VolatilityResponse) -> dict[str, Any]:
    body = _common(reply)
    body.update(window=reply.window, annualisation_days=reply.annualisation_days, numeric=reply.numeric)
    body["rates"] = {
        r.currency: {
            "observations": r.observations,
            "returns": r.returns,
            "volatility": _opt(r, "volatility"),
            "rolling": {p.date: p.volatility for p in r.rolling},
        }
        for r in reply.rates
    }
    return _tail(body, reply)


def trend_body(reply: analysis_pb2.TrendResponse) -> dict[str, Any]:
    body = _common(reply)
    body.update(kind=reply.kind, fast_window=reply.fast_window, slow_window=reply.slow_window)
    body["rates"] = {
        r.currency: {
            "direction": r.direction or None,
            "last_date": r.last_date,
            "rate": r.rate,
            "fast": _opt(r, "fast"),
            "slow": _opt(r, "slow"),
            "series": {p.date: {"fast": _opt(p, "fast"), "slow": _opt(p, "slow")} for p in r.series},
        }
        for r in reply.rates
    }
    return _tail(body, reply)


def ohlc_body(reply: analysis_pb2.OhlcResponse) -> dict[str, Any]:
    body = _common(reply)
    body["interval"] = reply.interval
    intraday = reply.interval not in ("1d", "1w", "1mo")
    keys = ["period_start", "open", "high", "low", "close", "count"]
    keys += ["first_at", "last_at"] if intraday else ["first_date", "last_date"]
    body["rates"] = {r.currency: [{k: getattr(b, k) for k in keys} for b in r.bars] for r in reply.rates}
    return _tail(body, reply)


async def rest(gw: Gateway, path: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = await gw.http.get(f"/analysis/{path}", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body
