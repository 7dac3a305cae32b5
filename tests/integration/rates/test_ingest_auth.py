"""With a service secret, IngestRates takes only calls signed as the validator (shared-secret
HMAC tokens, kurs_common.grpcserver); queries and health stay open; no secret: no check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.grpcserver import TOKEN_METADATA, ServiceToken
from kurs_common.observation import REFERENCE, Observation
from kurs_rates import server as rates_server
from kurs_rates.settings import RatesSettings
from kurs_validator import server as validator_server
from kurs_validator.settings import ValidatorSettings

pytestmark = pytest.mark.integration

SECRET = "correct horse battery staple"
DAY = dt.date(2026, 11, 2)


def rate(value: str) -> ingest_pb2.AcceptedRate:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime.combine(DAY, dt.time(15), tzinfo=dt.UTC))
    return ingest_pb2.AcceptedRate(
        source="ecb",
        kind=common_pb2.OBSERVATION_KIND_REFERENCE,
        base="EUR",
        currency="USD",
        value=value,
        date=DAY.isoformat(),
        observed_at=ts,
    )


async def ingest_code(port: int, token: str | None) -> grpc.StatusCode:
    metadata = () if token is None else ((TOKEN_METADATA, token),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
                ingest_pb2.IngestRatesRequest(rates=[rate("9.999")]), metadata=metadata, timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_ingest_is_for_the_validator_only(tmp_path: Path) -> None:
    rates = await rates_server.start(
        RatesSettings(
            address="127.0.0.1:0",
            database_url=f"sqlite:///{tmp_path / 'rates.sqlite3'}",
            service_secret=SECRET,
        )
    )
    try:
        port = rates.port
        expired = ServiceToken("validator", SECRET, clock=lambda: 1_000_000.0).value()
        assert await ingest_code(port, None) == grpc.StatusCode.UNAUTHENTICATED
        assert await ingest_code(port, "validator.9999999999.00") == grpc.StatusCode.UNAUTHENTICATED
        assert await ingest_code(port, ServiceToken("validator", "wrong").value()) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert await ingest_code(port, expired) == grpc.StatusCode.UNAUTHENTICATED
        assert await ingest_code(port, ServiceToken("gateway", SECRET).value()) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert await rates.store.figures_on("ecb", DAY) == []  # nothing refused was stored

        # Queries and health need no token.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as empty:
                await rates_pb2_grpc.RatesServiceStub(channel).GetLatestRates(
                    rates_pb2.GetLatestRatesRequest(base="EUR"), timeout=10
                )
            assert empty.value.code() == grpc.StatusCode.NOT_FOUND  # answered: nothing published yet
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING

        # The validator signs its calls: with the right secret they are taken; with a wrong one
        # the caller gets UNAVAILABLE (the validator keeps its outbox) and nothing is stored.
        observation = Observation(
            "ecb", "ecb-daily", REFERENCE, "EUR", "USD", "1.1600", DAY.isoformat(),
            dt.datetime.combine(DAY, dt.time(14), tzinfo=dt.UTC),
        )  # fmt: skip
        request = validator_pb2.SubmitObservationsRequest(observations=[observation.to_proto()])
        for secret, ok in (("wrong", False), (SECRET, True)):
            validator = await validator_server.start(
                ValidatorSettings(
                    address="127.0.0.1:0",
                    rates_address=f"127.0.0.1:{port}",
                    database_url=f"sqlite:///{tmp_path / f'validator-{ok}.sqlite3'}",
                    service_secret=secret,
                )
            )
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{validator.port}") as channel:
                    stub = validator_pb2_grpc.ValidatorServiceStub(channel)
                    if ok:
                        reply = await stub.SubmitObservations(request, timeout=10)
                        assert reply.inserted == 2  # the ECB's figure and the blended one
                    else:
                        with pytest.raises(grpc.aio.AioRpcError) as refused:
                            await stub.SubmitObservations(request, timeout=10)
                        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                        assert await rates.store.figures_on("ecb", DAY) == []
            finally:
                await validator.stop(0)
        assert [f.value for f in await rates.store.figures_on("ecb", DAY)] == ["1.1600"]
    finally:
        await rates.stop(0)


async def test_without_a_secret_ingest_is_open(tmp_path: Path) -> None:
    rates = await rates_server.start(
        RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'rates.sqlite3'}")
    )
    try:
        assert await ingest_code(rates.port, None) == grpc.StatusCode.OK
    finally:
        await rates.stop(0)
