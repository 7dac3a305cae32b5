"""kurs_collector.delivery.Deliverer against a stand-in ValidatorService stub: the counts of an
acknowledged batch, retries of retryable statuses only, and the refused items logged one by one
from the typed rejections."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import grpc
import pytest

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2
from kurs_collector.delivery import MAX_LOGGED_REJECTIONS, Deliverer, DeliveryError
from kurs_common.observation import Observation


def observation(quote: str, value: str) -> Observation:
    at = dt.datetime(2025, 1, 15, 16, 0, tzinfo=dt.UTC)
    return Observation("ecb", "daily", "reference", "EUR", quote, value, "2025-01-15", at)


def failure(code: grpc.StatusCode) -> Exception:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="boom")  # type: ignore[no-any-return]


class ValidatorStub:
    """Answers SubmitObservations with the queued replies or failures, recording each request."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[validator_pb2.SubmitObservationsRequest] = []

    async def SubmitObservations(self, request: Any, **_: Any) -> validator_pb2.SubmitObservationsResponse:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]


def deliverer(stub: ValidatorStub, attempts: int = 3) -> Deliverer:
    return Deliverer(stub, attempts=attempts, backoff=0.0, backoff_max=0.0, timeout=1.0)  # type: ignore[arg-type]


async def test_an_acknowledged_batch_reports_the_validators_counts() -> None:
    reply = validator_pb2.SubmitObservationsResponse(accepted=2, inserted=1, unchanged=1)
    done = await deliverer(ValidatorStub(reply)).deliver(
        [observation("USD", "1.03"), observation("GBP", "0.83")]
    )
    assert (done.accepted, done.rejected, done.inserted, done.updated, done.unchanged) == (2, 0, 1, 0, 1)


async def test_a_retryable_status_is_retried_and_a_final_one_is_not() -> None:
    reply = validator_pb2.SubmitObservationsResponse(accepted=1)
    stub = ValidatorStub(failure(grpc.StatusCode.UNAVAILABLE), reply)
    assert (await deliverer(stub).deliver([observation("USD", "1.03")])).accepted == 1
    assert len(stub.requests) == 2
    stub = ValidatorStub(failure(grpc.StatusCode.INVALID_ARGUMENT), reply)
    with pytest.raises(DeliveryError, match="INVALID_ARGUMENT"):
        await deliverer(stub).deliver([observation("USD", "1.03")])
    assert len(stub.requests) == 1


async def test_refused_items_are_logged_with_the_observation_and_the_reason(caplog: Any) -> None:
    batch = [observation("USD", "1.03"), observation("GBP", "-1")]
    rejection = common_pb2.ItemRejection(index=1, field="value", reason="not positive", code="non_positive")
    reply = validator_pb2.SubmitObservationsResponse(accepted=1, rejections=[rejection])
    with caplog.at_level(logging.WARNING, logger="kurs_collector.delivery"):
        done = await deliverer(ValidatorStub(reply)).deliver(batch)
    assert done.rejected == 1
    [record] = caplog.records
    assert record.rejected == 1
    assert record.items == [
        {
            "index": 1,
            "field": "value",
            "code": "non_positive",
            "reason": "not positive",
            "source": "ecb",
            "pair": "EUR/GBP",
            "value": "-1",
            "day": "2025-01-15",
        }
    ]


async def test_only_the_first_rejections_of_a_large_batch_are_itemised(caplog: Any) -> None:
    batch = [observation("USD", "-1")] * 50
    rejections = [common_pb2.ItemRejection(index=i, field="value", code="non_positive") for i in range(50)]
    reply = validator_pb2.SubmitObservationsResponse(rejections=rejections)
    with caplog.at_level(logging.WARNING, logger="kurs_collector.delivery"):
        await deliverer(ValidatorStub(reply)).deliver(batch)
    [record] = caplog.records
    assert record.rejected == 50
    assert len(record.items) == MAX_LOGGED_REJECTIONS
