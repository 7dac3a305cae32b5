"""The real ECB history travels collector -> validator -> rates over real gRPC."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_collector.server import CollectorServer
from kurs_rates.server import RatesServer

pytestmark = pytest.mark.integration


async def test_history_arrives_exactly_as_published(
    loaded_mesh: RatesServer, rates_channel: grpc.aio.Channel, history_csv: str
) -> None:
    stub = rates_pb2_grpc.RatesServiceStub(rates_channel)
    header = history_csv.splitlines()[0].split(",")
    row = next(line for line in history_csv.splitlines() if line.startswith("2025-01-15")).split(",")
    published = {c: v for c, v in zip(header[1:], row[1:], strict=False) if c and v and v != "N/A"}
    reply = await stub.GetHistoricalRates(rates_pb2.GetHistoricalRatesRequest(date="2025-01-15", base="EUR"))
    assert reply.date == "2025-01-15"
    assert {r.currency: r.value for r in reply.rates if r.currency != "EUR"} == published


async def test_rerun_adds_nothing(loaded_mesh: RatesServer, collector_service: CollectorServer) -> None:
    span = (dt.date(2024, 1, 1), dt.date(2026, 12, 31))
    before = await loaded_mesh.store.series("ecb", *span)
    result = await collector_service.runner.run("ecb-history")
    assert result.observations > 10_000
    assert result.accepted == result.observations
    after = await loaded_mesh.store.series("ecb", *span)
    assert after == before


async def test_health_and_reflection_registered(
    loaded_mesh: RatesServer, rates_channel: grpc.aio.Channel
) -> None:
    health = health_pb2_grpc.HealthStub(rates_channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="kurs.rates.v1.RatesService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
