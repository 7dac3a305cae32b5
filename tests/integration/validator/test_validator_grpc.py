"""The validator over real gRPC: rejections, anomalies (list, page, stream), quality, source states."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import grpc
import pytest

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.observation import REFERENCE, Observation
from kurs_validator.server import ValidatorServer

pytestmark = pytest.mark.integration


def business_days(count: int, start: dt.date) -> list[dt.date]:
    days = [start + dt.timedelta(days=i) for i in range(count * 2)]
    return [d for d in days if d.weekday() < 5][:count]


def fixing(source: str, quote: str, value: str, day: dt.date, base: str = "EUR") -> Observation:
    at = dt.datetime.combine(day, dt.time(14), tzinfo=dt.UTC)
    return Observation(source, f"{source}-daily", REFERENCE, base, quote, value, day.isoformat(), at)


DAYS = business_days(12, dt.date(2026, 9, 1))
LEVELS = {"USD": "1.1172", "JPY": "175.68", "GBP": "0.8338", "SAR": "4.19", "CHF": "0.9194"}


def _day(i: int, source: str = "ecb") -> list[Observation]:
    out = []
    for k, (code, level) in enumerate(LEVELS.items()):
        value = f"{level}{(i * 3 + k) % 7}"  # small daily moves, the published string kept as is
        out.append(fixing(source, code, value, DAYS[i]))
    return out


def _request(observations: list[Observation]) -> validator_pb2.SubmitObservationsRequest:
    return validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in observations])


async def test_submit_list_and_quality(
    validator_service: ValidatorServer, validator_channel: grpc.aio.Channel, rates_channel: grpc.aio.Channel
) -> None:
    stub = validator_pb2_grpc.ValidatorServiceStub(validator_channel)
    clean = [o for i in range(11) for o in _day(i)]
    reply = await stub.SubmitObservations(_request(clean))
    # inserted: 55 figures as the ECB published them + 55 in the blended series
    assert (reply.accepted, len(reply.rejections), reply.published, reply.inserted) == (55, 0, 55, 110)

    last = _day(11)
    bad = [
        dataclasses.replace(last[0], value="0.8950"),  # USD inverted
        dataclasses.replace(last[1], value="17568"),  # JPY shifted
        *last[2:],
    ]
    reply = await stub.SubmitObservations(_request(bad))
    assert sorted((r.index, r.field, r.code) for r in reply.rejections) == [
        (0, "value", "inverted"),
        (1, "value", "decimal_shift"),
    ]
    assert reply.accepted == 3

    # The accepted figures arrive in rates exactly as published.
    rates = rates_pb2_grpc.RatesServiceStub(rates_channel)
    hist = await rates.GetHistoricalRates(
        rates_pb2.GetHistoricalRatesRequest(date=DAYS[10].isoformat(), base="EUR")
    )
    assert {r.currency: r.value for r in hist.rates if r.currency != "EUR"} == {
        o.quote: o.value for o in _day(10)
    }

    # Anomalies: newest first, filtered, paged.
    page = await stub.ListAnomalies(validator_pb2.ListAnomaliesRequest(page_size=1))
    assert [a.reason for a in page.anomalies] == ["decimal_shift"]
    assert page.next_page_token
    rest = await stub.ListAnomalies(
        validator_pb2.ListAnomaliesRequest(page_size=1, page_token=page.next_page_token)
    )
    assert [(a.reason, a.currency, a.observation.value, a.expected) for a in rest.anomalies] == [
        ("inverted", "USD", "0.8950", _day(10)[0].value)
    ]
    assert rest.next_page_token == ""
    only = await stub.ListAnomalies(validator_pb2.ListAnomaliesRequest(currency="jpy"))
    assert [a.reason for a in only.anomalies] == ["decimal_shift"]
    listed = only.anomalies[0]
    assert (listed.observation.source, listed.observation.quote, listed.observation.date) == (
        "ecb",
        "JPY",
        DAYS[11].isoformat(),
    )
    assert listed.observation.kind == common_pb2.OBSERVATION_KIND_REFERENCE
    assert listed.observation.HasField("observed_at")
    # The deprecated flat fields still carry the same observation for clients of the previous release.
    assert (listed.source, listed.kind, listed.quote, listed.value, listed.date, listed.observed_at) == (
        listed.observation.source,
        listed.observation.kind,
        listed.observation.quote,
        listed.observation.value,
        listed.observation.date,
        listed.observation.observed_at,
    )

    # Quality of a published rate.
    quality = await stub.GetQuality(
        validator_pb2.GetQualityRequest(currency="GBP", date=DAYS[11].isoformat())
    )
    record = quality.record
    assert (record.currency, record.value, record.source, record.date) == (
        "GBP",
        last[2].value,
        "ecb",
        DAYS[11].isoformat(),
    )
    assert [c.source for c in record.contributors] == ["ecb"]
    assert record.confidence == validator_pb2.CONFIDENCE_LOW  # one source, backed by its history
    latest = await stub.GetQuality(validator_pb2.GetQualityRequest(currency="USD"))
    assert latest.record.date == DAYS[10].isoformat()  # the inverted figure of DAYS[11] was not published

    states = await stub.ListSourceStates(validator_pb2.ListSourceStatesRequest())
    (ecb,) = states.sources
    assert (ecb.source, ecb.accepted, ecb.rejected, ecb.last_date) == ("ecb", 58, 2, DAYS[11].isoformat())


async def test_request_errors(validator_channel: grpc.aio.Channel) -> None:
    stub = validator_pb2_grpc.ValidatorServiceStub(validator_channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetQuality(validator_pb2.GetQualityRequest(currency="USD"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    for request in (
        validator_pb2.GetQualityRequest(currency=""),
        validator_pb2.GetQualityRequest(currency="USD", date="2026-02-30"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetQuality(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for listing in (
        validator_pb2.ListAnomaliesRequest(page_size=5000),
        validator_pb2.ListAnomaliesRequest(page_token="x"),
        validator_pb2.ListAnomaliesRequest(start_date="2026-02-01", end_date="2026-01-01"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListAnomalies(listing)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_stream_anomalies(validator_channel: grpc.aio.Channel) -> None:
    stub = validator_pb2_grpc.ValidatorServiceStub(validator_channel)
    await stub.SubmitObservations(_request([dataclasses.replace(_day(0)[0], value="-1")]))
    received: list[validator_pb2.Anomaly] = []
    (first_stored,) = (await stub.ListAnomalies(validator_pb2.ListAnomaliesRequest())).anomalies
    # Stored after `after_id` (whether before or after the stream started) or new: nothing is missed.
    call = stub.WatchAnomalies(validator_pb2.WatchAnomaliesRequest(after_id=first_stored.id, source="ecb"))

    async def read() -> None:
        async for response in call:
            received.append(response.anomaly)
            if len(received) == 2:
                return

    reader = asyncio.create_task(read())
    await stub.SubmitObservations(
        _request(
            [fixing("other", "SAR", "0.41", DAYS[0], base="USD"), dataclasses.replace(_day(1)[0], value="0")]
        )
    )
    await stub.SubmitObservations(_request([dataclasses.replace(_day(2)[0], value="NaN")]))
    await asyncio.wait_for(reader, 10)
    call.cancel()
    assert [(a.reason, a.observation.value) for a in received] == [
        ("non_positive", "0"),
        ("not_a_number", "NaN"),
    ]
    assert received[0].id < received[1].id

    replay = stub.WatchAnomalies(validator_pb2.WatchAnomaliesRequest(after_id=first_stored.id))
    response = await asyncio.wait_for(replay.read(), 10)
    replay.cancel()
    assert isinstance(response, validator_pb2.WatchAnomaliesResponse)
    first = response.anomaly
    # Unfiltered, the replay starts right after the cursor.
    assert (first.id, first.observation.source, first.reason) == (first_stored.id + 1, "ecb", "non_positive")
    # Streamed live and replayed from the store, an anomaly is the same message.
    assert first == received[0]
    other = await stub.ListAnomalies(validator_pb2.ListAnomaliesRequest(source="other"))
    assert [(a.reason, a.currency, a.expected) for a in other.anomalies] == [("peg_break", "SAR", "3.75")]
