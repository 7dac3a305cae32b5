"""At-least-once delivery of observation batches to the validator.

A batch is retried (exponential backoff, full jitter) until the validator acknowledges it or the
attempts run out. Keys are idempotent downstream, so a batch delivered twice stores nothing twice.
What the validator refused is logged once per batch, item by item (its typed rejections: index,
field, code, reason, with the observation they point at), the first MAX_LOGGED_REJECTIONS of them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_collector.settings import CollectorSettings
from kurs_common.observation import Observation

log = logging.getLogger(__name__)

MAX_LOGGED_REJECTIONS = 10
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


class DeliveryError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Delivered:
    accepted: int
    rejected: int
    # What the rates service reported for the accepted part (idempotent keys: a repeat is
    # "unchanged", never a second row).
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class Deliverer:
    def __init__(
        self,
        stub: validator_pb2_grpc.ValidatorServiceStub,
        *,
        attempts: int,
        backoff: float,
        backoff_max: float,
        timeout: float,
    ) -> None:
        self.stub = stub
        self.attempts = attempts
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.timeout = timeout

    @classmethod
    def for_settings(cls, channel: grpc.aio.Channel, settings: CollectorSettings) -> Deliverer:
        """A deliverer to the validator on `channel` with the settings' retries and timeout."""
        return cls(
            validator_pb2_grpc.ValidatorServiceStub(channel),
            attempts=settings.delivery_attempts,
            backoff=settings.delivery_backoff_seconds,
            backoff_max=settings.delivery_backoff_max_seconds,
            timeout=settings.delivery_timeout_seconds,
        )

    async def deliver(self, batch: Sequence[Observation]) -> Delivered:
        request = validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in batch])
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self.stub.SubmitObservations(request, timeout=self.timeout, wait_for_ready=True)
                if reply.rejections:
                    log_rejections(batch, reply.rejections)
                return Delivered(
                    reply.accepted, len(reply.rejections), reply.inserted, reply.updated, reply.unchanged
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or attempt == self.attempts:
                    raise DeliveryError(f"validator: {exc.code().name}: {exc.details()}") from exc
                delay = random.uniform(0, min(self.backoff_max, self.backoff * 2 ** (attempt - 1)))
                log.warning(
                    "delivery failed, retrying",
                    extra={"attempt": attempt, "delay_s": round(delay, 3), "code": exc.code().name},
                )
                await asyncio.sleep(delay)
        raise DeliveryError("no delivery attempts configured")


def log_rejections(batch: Sequence[Observation], rejections: Sequence[common_pb2.ItemRejection]) -> None:
    """One warning naming the items the validator refused and why (the first few)."""
    items = []
    for rejection in rejections[:MAX_LOGGED_REJECTIONS]:
        item: dict[str, object] = {
            "index": rejection.index,
            "field": rejection.field,
            "code": rejection.code,
            "reason": rejection.reason,
        }
        if rejection.index < len(batch):
            refused = batch[rejection.index]
            item.update(
                source=refused.source,
                pair=f"{refused.base}/{refused.quote}",
                value=refused.value,
                day=refused.day,
            )
        items.append(item)
    log.warning("the validator rejected observations", extra={"rejected": len(rejections), "items": items})
