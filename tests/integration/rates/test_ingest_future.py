"""IngestRates refuses rates stamped in the future beyond the clock skew allowance, one by one."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_common.timeutil import utcnow
from kurs_rates.server import RatesServer

pytestmark = pytest.mark.integration


def tick(currency: str, value: str, at: dt.datetime, day: dt.date | None = None) -> ingest_pb2.AcceptedRate:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ingest_pb2.AcceptedRate(
        source="kraken",
        kind=common_pb2.OBSERVATION_KIND_LIVE,
        base="EUR",
        currency=currency,
        value=value,
        date=(day or at.date()).isoformat(),
        observed_at=ts,
    )


async def test_rates_from_the_future_are_refused_alone(rates_service: RatesServer) -> None:
    now = utcnow()
    batch = [
        tick("USD", "1.1601", now - dt.timedelta(seconds=5)),
        tick("USD", "9.999", now + dt.timedelta(hours=1)),  # an hour ahead: refused
        tick("GBP", "0.8801", now + dt.timedelta(minutes=1)),  # within the 5-minute skew
        tick("CHF", "0.9401", now, day=now.date() + dt.timedelta(days=3)),  # dated days ahead
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates_service.port}") as channel:
        reply = await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
            ingest_pb2.IngestRatesRequest(rates=batch), timeout=30
        )
        latest = await rates_pb2_grpc.RatesServiceStub(channel).GetLatestRates(
            rates_pb2.GetLatestRatesRequest(base="EUR", symbols=["USD"]), timeout=30
        )
    assert [(r.index, r.field) for r in reply.rejections] == [(1, "observed_at"), (3, "date")]
    assert "in the future" in reply.rejections[0].reason
    assert reply.inserted == 2
    stored = {(r.currency, r.value) for r in await rates_service.store.latest_live()}
    assert stored == {("USD", "1.1601"), ("GBP", "0.8801")}
    assert [r.value for r in latest.rates] == ["1.1601"]
