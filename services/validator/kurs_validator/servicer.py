"""ValidatorService: validate a batch, forward what passes to the rates service."""

from __future__ import annotations

import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.timeutil import utcnow
from kurs_validator.rules import PIVOT, Accepted, validate_batch

log = logging.getLogger(__name__)

MAX_BATCH = 50_000

_RATE_KINDS = {REFERENCE: ingest_pb2.RATE_KIND_REFERENCE, LIVE: ingest_pb2.RATE_KIND_LIVE}


def to_rate(item: Accepted) -> ingest_pb2.AcceptedRate:
    ts = Timestamp()
    ts.FromDatetime(item.observed_at)
    return ingest_pb2.AcceptedRate(
        source=item.source,
        kind=_RATE_KINDS[item.kind],
        base=PIVOT,
        currency=item.currency,
        value=item.value,
        date=item.day.isoformat(),
        observed_at=ts,
        sources=item.sources,
        replay=item.replay,
    )


class ValidatorServicer(validator_pb2_grpc.ValidatorServiceServicer):
    def __init__(
        self, rates: ingest_pb2_grpc.RatesIngestServiceStub, forward_batch: int, timeout: float
    ) -> None:
        self.rates = rates
        self.forward_batch = forward_batch
        self.timeout = timeout

    async def SubmitObservations(
        self, request: validator_pb2.SubmitObservationsRequest, context: grpc.aio.ServicerContext
    ) -> validator_pb2.SubmitObservationsResponse:
        if len(request.observations) > MAX_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"observations: at most {MAX_BATCH} per batch"
            )
        accepted, rejected = validate_batch(
            [Observation.from_proto(o) for o in request.observations], utcnow()
        )
        inserted = updated = unchanged = 0
        for start in range(0, len(accepted), self.forward_batch):
            chunk = accepted[start : start + self.forward_batch]
            try:
                reply = await self.rates.IngestRates(
                    ingest_pb2.IngestRatesRequest(rates=[to_rate(a) for a in chunk]), timeout=self.timeout
                )
            except grpc.aio.AioRpcError as exc:
                # Nothing is acknowledged: the collector retries the whole batch (idempotent keys).
                code = exc.code()
                if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                    await context.abort(
                        grpc.StatusCode.INTERNAL, f"rates rejected a validated batch: {exc.details()}"
                    )
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"rates service: {exc.details() or code.name}"
                )
            inserted += reply.inserted
            updated += reply.updated
            unchanged += reply.unchanged
        if rejected:
            reasons: dict[str, int] = {}
            for r in rejected:
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
            log.warning("observations rejected", extra={"count": len(rejected), "reasons": reasons})
        return validator_pb2.SubmitObservationsResponse(
            accepted=len(accepted),
            rejections=[
                validator_pb2.Rejection(index=r.index, reason=r.reason, detail=r.detail) for r in rejected
            ],
            inserted=inserted,
            updated=updated,
            unchanged=unchanged,
        )
