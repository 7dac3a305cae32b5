"""IngestRates refuses bad rates one by one, typed ({index, field, reason}), and takes the others."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from kurs_rates.server import RatesServer

pytestmark = pytest.mark.integration


def rate(currency: str, value: str, *, base: str = "EUR", source: str = "ecb") -> ingest_pb2.AcceptedRate:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime(2025, 1, 15, 15, tzinfo=dt.UTC))
    return ingest_pb2.AcceptedRate(
        source=source,
        kind=common_pb2.OBSERVATION_KIND_REFERENCE,
        base=base,
        currency=currency,
        value=value,
        date="2025-01-15",
        observed_at=ts,
        sources=[source],
    )


async def test_bad_rates_are_refused_alone(rates_service: RatesServer) -> None:
    batch = [
        rate("USD", "1.0316"),
        rate("JPY", "-1"),  # not positive
        rate("GBP", "0.8424", base="XYZW1"),  # not a code
        rate("USD", "1.03", source="blend", base="GBP"),  # the blend is per EUR only
        rate("CHF", "0.9412"),
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates_service.port}") as channel:
        reply = await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
            ingest_pb2.IngestRatesRequest(rates=batch)
        )
    assert [(r.index, r.field) for r in reply.rejections] == [(1, "value"), (2, "base"), (3, "base")]
    assert all(r.reason for r in reply.rejections)
    assert reply.inserted == 2
    stored = await rates_service.store.figures_on("ecb", dt.date(2025, 1, 15))
    assert {(f.base, f.quote, f.value) for f in stored} == {
        ("EUR", "USD", "1.0316"),
        ("EUR", "CHF", "0.9412"),
    }
