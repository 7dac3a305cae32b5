"""Driving running rates services over gRPC: ingest requests built from plain values, and a Replica
client (ingest, latest, health, stream) with the waits the replica tests share."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc

if TYPE_CHECKING:
    from kurs_rates.book import LatestRates
    from kurs_rates.queries import RateQueries
    from kurs_rates.server import RatesServer

WAIT = 20.0  # generous upper bound for something that normally takes milliseconds


def accepted_rate(
    currency: str, value: str, observed: dt.datetime, kind: str = "live", source: str = "replay"
) -> ingest_pb2.AcceptedRate:
    """A live tick of `source`, or (kind="reference") a blend figure, per EUR, observed at `observed`."""
    ts = Timestamp()
    ts.FromDatetime(observed)
    return ingest_pb2.AcceptedRate(
        source=source if kind == "live" else "blend",
        kind=common_pb2.OBSERVATION_KIND_LIVE if kind == "live" else common_pb2.OBSERVATION_KIND_REFERENCE,
        base="EUR",
        currency=currency,
        value=value,
        date=observed.date().isoformat(),
        observed_at=ts,
    )


def accepted(
    currency: str, value: str, at: str, kind: str = "live", source: str = "replay"
) -> ingest_pb2.AcceptedRate:
    """accepted_rate observed at the ISO 8601 instant `at`."""
    return accepted_rate(currency, value, dt.datetime.fromisoformat(at), kind, source)


def fixing(day: str, **values: str) -> list[ingest_pb2.AcceptedRate]:
    """A blend fixing of `day` (YYYY-MM-DD) at 15:00 UTC: currency=value per EUR."""
    return [accepted(c, v, f"{day}T15:00:00+00:00", kind="reference") for c, v in values.items()]


def ecb_fixing_in_blend(day: str, rates: Mapping[str, str]) -> list[ingest_pb2.AcceptedRate]:
    """An ECB fixing of `day` (YYYY-MM-DD, 15:00 UTC) as the validator publishes it into the blended
    series: source "blend", contributor "ecb", currency=value per EUR."""
    ts = Timestamp()
    ts.FromDatetime(dt.datetime.fromisoformat(f"{day}T15:00:00+00:00"))
    return [
        ingest_pb2.AcceptedRate(
            source="blend",
            kind=common_pb2.OBSERVATION_KIND_REFERENCE,
            base="EUR",
            currency=code,
            value=value,
            date=day,
            observed_at=ts,
            sources=["ecb"],
        )
        for code, value in rates.items()
    ]


class Replica:
    """One started rates service and a channel to it."""

    def __init__(self, service: RatesServer) -> None:
        self.service = service
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
        self.rates = rates_pb2_grpc.RatesServiceStub(self.channel)
        self.ingest_stub = ingest_pb2_grpc.RatesIngestServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def ingest(self, *rates: ingest_pb2.AcceptedRate) -> ingest_pb2.IngestRatesResponse:
        reply: ingest_pb2.IngestRatesResponse = await self.ingest_stub.IngestRates(
            ingest_pb2.IngestRatesRequest(rates=rates), timeout=WAIT
        )
        return reply

    async def latest(self, *symbols: str) -> dict[str, str]:
        reply = await self.rates.GetLatestRates(
            rates_pb2.GetLatestRatesRequest(base="EUR", symbols=symbols), timeout=WAIT
        )
        return {r.currency: r.value for r in reply.rates}

    async def historical(self, date: str, *symbols: str) -> dict[str, str]:
        """GetHistoricalRates per EUR on `date`: currency -> value."""
        reply = await self.rates.GetHistoricalRates(
            rates_pb2.GetHistoricalRatesRequest(date=date, base="EUR", symbols=symbols), timeout=WAIT
        )
        return {r.currency: r.value for r in reply.rates}

    async def status(self, name: str) -> int:
        reply = await self.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=WAIT)
        return int(reply.status)

    def stream(self, since: int = 0, *symbols: str) -> grpc.aio.UnaryStreamCall:
        return self.rates.StreamRates(
            rates_pb2.StreamRatesRequest(base="EUR", symbols=symbols, since_sequence=since), timeout=120
        )

    async def close(self) -> None:
        await self.channel.close()
        await self.service.stop(0)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds (at most WAIT seconds); fail naming `what` otherwise."""
    async with asyncio.timeout(WAIT):
        while not await check():  # noqa: ASYNC110 - polls a server, nothing local to wait on
            await asyncio.sleep(0.05)
    assert await check(), what


async def next_message(call: grpc.aio.UnaryStreamCall) -> rates_pb2.StreamRatesResponse:
    message = await asyncio.wait_for(call.read(), WAIT)
    assert isinstance(message, rates_pb2.StreamRatesResponse), message
    return message


def values(message: rates_pb2.StreamRatesResponse) -> dict[str, str]:
    """currency -> value of a stream message's snapshot or update."""
    body = message.snapshot if message.HasField("snapshot") else message.update
    return {r.currency: r.value for r in body.rates}


@contextlib.asynccontextmanager
async def serving_rates(
    queries: RateQueries, book: LatestRates
) -> AsyncIterator[rates_pb2_grpc.RatesServiceStub]:
    """The RatesService of `queries` and `book` alone on a loopback port, and a stub to it."""
    from kurs_rates.servicer import RatesServicer

    server = grpc.aio.server()
    rates_pb2_grpc.add_RatesServiceServicer_to_server(RatesServicer(queries, book), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield rates_pb2_grpc.RatesServiceStub(channel)
    finally:
        await server.stop(None)
