"""One mesh per test module for the SDK: two rates replicas sharing one PostgreSQL database and
one Redis prefix (global sequence, fan-out), a gateway in front of each, seeded with two ECB-style
fixings; plus a fake ExchangeRate-API v6 server on loopback.

Tests that kill something start their own extra replica or gateway on the same stores, so the
shared ones stay up for the other tests of the module.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import uvicorn
from google.protobuf.timestamp_pb2 import Timestamp
from integration.rates.conftest import HINT, PG_DSN, REDIS_URL, with_database
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conftest import serve_gateway
from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from kurs_rates import server as rates_server
from kurs_rates.server import RatesServer
from kurs_rates.settings import RatesSettings

# Per EUR, as the ECB publishes them (day 2 is the latest fixing).
DAY1, DAY2 = "2026-10-29", "2026-10-30"
FIXING1 = {"USD": "1.1650", "GBP": "0.8830", "JPY": "178.20", "CHF": "0.9310"}
FIXING2 = {
    "USD": "1.1672", "GBP": "0.8838", "JPY": "178.55", "CHF": "0.9302", "AUD": "1.7790", "CAD": "1.6320",
    "SEK": "10.9850", "NOK": "11.7210", "DKK": "7.4612", "PLN": "4.2450", "CZK": "24.315", "HUF": "389.40",
    "NZD": "2.0310", "SGD": "1.5110", "HKD": "9.0720", "KRW": "1665.30", "ZAR": "20.115", "MXN": "21.530",
    "INR": "102.45", "BRL": "6.2810",
}  # fmt: skip


def accepted(currency: str, value: str, at: dt.datetime, *, live: bool) -> ingest_pb2.AcceptedRate:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return ingest_pb2.AcceptedRate(
        source="replay" if live else "blend",
        kind=common_pb2.OBSERVATION_KIND_LIVE if live else common_pb2.OBSERVATION_KIND_REFERENCE,
        base="EUR",
        currency=currency,
        value=value,
        date=at.date().isoformat(),
        observed_at=stamp,
        sources=["market"] if live else ["ecb"],
    )


BOE = {"USD": "1.3210", "EUR": "1.1314"}  # a publisher's own figures, per GBP


def publisher_figures(
    source: str, base: str, day: str, values: dict[str, str]
) -> list[ingest_pb2.AcceptedRate]:
    stamp = Timestamp()
    stamp.FromDatetime(dt.datetime.fromisoformat(f"{day}T16:00:00+00:00"))
    return [
        ingest_pb2.AcceptedRate(
            source=source,
            kind=common_pb2.OBSERVATION_KIND_REFERENCE,
            base=base,
            currency=code,
            value=value,
            date=day,
            observed_at=stamp,
            sources=[source],
        )
        for code, value in values.items()
    ]


def fixing(day: str, values: dict[str, str]) -> list[ingest_pb2.AcceptedRate]:
    at = dt.datetime.fromisoformat(f"{day}T15:00:00+00:00")
    return [accepted(c, v, at, live=False) for c, v in values.items()]


async def ingest(port: int, *rates: ingest_pb2.AcceptedRate) -> int:
    """Publish straight into a rates replica; returns the stream sequence of the change."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
            ingest_pb2.IngestRatesRequest(rates=rates), timeout=20
        )
    return int(reply.sequence)


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SdkMesh:
    database_url: str
    redis_prefix: str
    replicas: list[RatesServer]
    gateways: list[str]
    extra: list[RatesServer] = field(default_factory=list)

    async def start_replica(self) -> RatesServer:
        service = await rates_server.start(
            RatesSettings(
                address="127.0.0.1:0",
                database_url=self.database_url,
                redis_url=REDIS_URL,
                redis_prefix=self.redis_prefix,
                pg_connect_timeout=1.0,
                pg_statement_timeout=2.0,
            )
        )
        self.extra.append(service)
        return service


async def _admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}: {exc!r}; {HINT}")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sdk_mesh() -> AsyncIterator[SdkMesh]:
    name = f"kurs_sdk_{secrets.token_hex(6)}"
    prefix = f"kurs:sdk:{secrets.token_hex(6)}:"
    await _admin(f'CREATE DATABASE "{name}"')
    mesh = SdkMesh(with_database(PG_DSN, name), prefix, [], [])
    try:
        async with contextlib.AsyncExitStack() as stack:
            mesh.replicas = [await mesh.start_replica(), await mesh.start_replica()]
            mesh.extra.clear()
            for replica in mesh.replicas:
                stack.push_async_callback(replica.stop, 0)
            await ingest(mesh.replicas[0].port, *fixing(DAY1, FIXING1))
            await ingest(mesh.replicas[0].port, *fixing(DAY2, FIXING2))
            await ingest(mesh.replicas[0].port, *publisher_figures("boe", "GBP", DAY2, BOE))
            for replica in mesh.replicas:
                url = await stack.enter_async_context(serve_gateway(replica.port, 0, heartbeat_seconds=1))
                mesh.gateways.append(url)
            yield mesh
            for extra in mesh.extra:
                with contextlib.suppress(Exception):
                    await extra.stop(0)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


# -- a fake ExchangeRate-API v6 -----------------------------------------------------------------

V6_KEY = "test-key"
V6_UPDATED = 1761782401  # Thu, 30 Oct 2025 00:00:01 +0000
# A USD-only table (the fake refuses any other base with `unsupported-code`), JSON numbers with
# more digits than a float keeps.
V6_USD = {"USD": "1", "EUR": "0.8567511994516792", "GBP": "0.7571967100753942", "JPY": "152.9815"}


def _v6_body(fields: dict[str, Any]) -> Response:
    head = {
        "result": "success",
        "documentation": "https://www.exchangerate-api.com/docs",
        "terms_of_use": "https://www.exchangerate-api.com/terms",
        "time_last_update_unix": V6_UPDATED,
        "time_last_update_utc": "Thu, 30 Oct 2025 00:00:01 +0000",
        "time_next_update_unix": V6_UPDATED + 86400,
        "time_next_update_utc": "Fri, 31 Oct 2025 00:00:01 +0000",
    }
    parts = [f'"{k}":{v}' if isinstance(v, int) else f'"{k}":"{v}"' for k, v in head.items()]
    for key, value in fields.items():
        if isinstance(value, dict):  # numbers written with exactly these digits
            parts.append(f'"{key}":{{' + ",".join(f'"{c}":{n}' for c, n in value.items()) + "}")
        elif isinstance(value, Decimal):
            parts.append(f'"{key}":{value}')
        else:
            parts.append(f'"{key}":"{value}"')
    return Response("{" + ",".join(parts) + "}", media_type="application/json")


def _v6_error(error_type: str, status: int) -> Response:
    return Response(
        f'{{"result":"error","error-type":"{error_type}"}}', status, media_type="application/json"
    )


@dataclass
class FakeV6:
    url: str
    requests: list[str] = field(default_factory=list)


def v6_app(fake: FakeV6) -> Starlette:
    async def latest(request: Request) -> Response:
        fake.requests.append(request.url.path)
        if request.path_params["key"] != V6_KEY:
            return _v6_error("invalid-key", 401)
        if request.path_params["base"] != "USD":
            return _v6_error("unsupported-code", 404)
        return _v6_body({"base_code": "USD", "conversion_rates": V6_USD})

    async def pair(request: Request) -> Response:
        fake.requests.append(request.url.path)
        src, dst = request.path_params["src"], request.path_params["dst"]
        if request.path_params["key"] != V6_KEY:
            return _v6_error("invalid-key", 401)
        if src != "USD" or dst not in V6_USD:
            return _v6_error("unsupported-code", 404)
        return _v6_body({"base_code": src, "target_code": dst, "conversion_rate": Decimal(V6_USD[dst])})

    return Starlette(
        routes=[
            Route("/v6/{key}/latest/{base}", latest),
            Route("/v6/{key}/pair/{src}/{dst}", pair),
        ]
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake_v6() -> AsyncIterator[FakeV6]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake = FakeV6(f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = uvicorn.Server(uvicorn.Config(v6_app(fake), access_log=False, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
        sock.close()
