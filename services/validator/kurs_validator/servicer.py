"""ValidatorService: validate a batch, forward the consensus to the rates service, expose anomalies
and quality records."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.observation import REFERENCE, Observation
from kurs_common.rate import Rate
from kurs_common.timeutil import DateFormatError, parse_date, utcnow
from kurs_validator.engine import ValidationEngine
from kurs_validator.forwarding import ingest_request, published_figures
from kurs_validator.hub import AnomalyHub
from kurs_validator.model import Anomaly, BatchOutcome, QualityRecord
from kurs_validator.store import AnomalyFilter, ValidatorStore
from kurs_validator.wire import (
    KIND_NAMES,
    anomaly_to_proto,
    observations_from_proto,
    quality_to_proto,
    source_to_proto,
)

log = logging.getLogger(__name__)

MAX_BATCH = 50_000
DEFAULT_PAGE = 100
MAX_PAGE = 1_000
# Rates kept for a retry while the rates service cannot take them. At this size new
# batches are refused (UNAVAILABLE, not acknowledged) until the outbox drains: never dropped.
# Bounded at MAX_OUTBOX plus one batch's publications.
MAX_OUTBOX = 2_000_000


def _currency(field: str, text: str, *, required: bool) -> str:
    code = text.strip().upper()
    if not code:
        if required:
            raise ValueError(f"{field}: is required")
        return ""
    if len(code) not in (3, 4) or not code.isascii() or not code.isalpha():
        raise ValueError(f"{field}: {text!r} is not a currency code")
    return code


def _day(field: str, text: str) -> str:
    if not text:
        return ""
    try:
        return parse_date(text).isoformat()
    except DateFormatError as exc:
        raise ValueError(f"{field}: {exc}") from exc


class ValidatorServicer(validator_pb2_grpc.ValidatorServiceServicer):
    def __init__(
        self,
        rates: ingest_pb2_grpc.RatesIngestServiceStub,
        engine: ValidationEngine,
        store: ValidatorStore,
        hub: AnomalyHub,
        forward_batch: int,
        timeout: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.rates = rates
        self.engine = engine
        self.store = store
        self.hub = hub
        self.forward_batch = forward_batch
        self.timeout = timeout
        self.clock = clock
        self._lock = asyncio.Lock()
        # Rates the rates service has not acknowledged yet (sent first on the next call).
        self._outbox: list[Rate] = []

    # -- writes ----------------------------------------------------------------------------
    async def SubmitObservations(
        self, request: validator_pb2.SubmitObservationsRequest, context: grpc.aio.ServicerContext
    ) -> validator_pb2.SubmitObservationsResponse:
        if len(request.observations) > MAX_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"observations: at most {MAX_BATCH} per batch"
            )
        observations = observations_from_proto(request.observations)
        async with self._lock:
            if len(self._outbox) >= MAX_OUTBOX:
                # Back-pressure instead of dropping what was validated: the batch is not taken
                # (not acknowledged), the caller retries once the rates service catches up.
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"{len(self._outbox)} published rates wait for the rates service; retry later",
                )
            now = self.clock()
            # Shielded: once the engine has taken the batch into its state, its publications must
            # reach the outbox even if this call is cancelled (a client deadline); a retry of the
            # batch is then a duplicate, and the outbox goes out first on the next call.
            outcome = await asyncio.shield(self._process(observations, now))
            # The store writes (in a worker thread) while the rates service is called.
            recording = asyncio.create_task(self._record(outcome.anomalies, outcome.quality))
            inserted = updated = unchanged = 0
            while self._outbox:
                chunk = self._outbox[: self.forward_batch]
                try:
                    reply = await self.rates.IngestRates(
                        ingest_request(chunk),
                        timeout=self.timeout,
                    )
                except grpc.aio.AioRpcError as exc:
                    # Kept in the outbox: the collector retries (its batch is now a duplicate) and the
                    # outbox goes out first.
                    code = exc.code()
                    await recording
                    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                        # The batch as a whole was refused (rates refuses single rates one by one,
                        # in `rejections`): it can never be taken, so it is not kept.
                        del self._outbox[: len(chunk)]
                        await context.abort(
                            grpc.StatusCode.INTERNAL, f"rates rejected a validated batch: {exc.details()}"
                        )
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE, f"rates service: {exc.details() or code.name}"
                    )
                for refused in reply.rejections:
                    if refused.index < len(chunk):
                        dropped = chunk[refused.index]
                        log.error(
                            "rates refused a validated rate; dropped it",
                            extra={
                                "source": dropped.source,
                                "currency": dropped.currency,
                                "value": dropped.value,
                                "field": refused.field,
                                "reason": refused.reason,
                            },
                        )
                del self._outbox[: len(chunk)]
                inserted += reply.inserted
                updated += reply.updated
                unchanged += reply.unchanged
            await recording
        if outcome.rejections:
            reasons: dict[str, int] = {}
            for r in outcome.rejections:
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
            log.warning("observations rejected", extra={"count": len(outcome.rejections), "reasons": reasons})
        return validator_pb2.SubmitObservationsResponse(
            accepted=outcome.accepted,
            rejections=[
                common_pb2.ItemRejection(index=r.index, field=r.field, reason=r.detail, code=r.reason)
                for r in outcome.rejections
            ],
            # The previous contract's shape, for collectors of the previous release (deprecated).
            legacy_rejections=[
                validator_pb2.Rejection(index=r.index, reason=r.reason, detail=r.detail)
                for r in outcome.rejections
            ],
            inserted=inserted,
            updated=updated,
            unchanged=unchanged,
            held=outcome.held,
            duplicates=outcome.duplicates,
            published=len(outcome.published),
        )

    async def _process(self, observations: list[Observation], now: dt.datetime) -> BatchOutcome:
        outcome = await asyncio.to_thread(self.engine.process, observations, now)
        self._outbox.extend(published_figures(observations, outcome))
        self._outbox.extend(outcome.published)
        return outcome

    async def _record(self, anomalies: Sequence[Anomaly], quality: Sequence[QualityRecord]) -> None:
        try:
            new = await asyncio.to_thread(self.store.write, anomalies, quality)
        except Exception:
            # Publication does not wait for the quality store; the loss is logged.
            log.exception(
                "could not store anomalies and quality records",
                extra={"anomalies": len(anomalies), "quality": len(quality)},
            )
            return
        self.hub.publish_all(new)

    async def maintain(self) -> None:
        """Periodic work: flag stale sources, apply the retention rules."""
        async with self._lock:
            now = self.clock()
            stale = self.engine.check_stale(now)
            await self._record(stale, [])
        try:
            deleted = await asyncio.to_thread(self.store.purge, now)
        except Exception:
            log.exception("retention purge failed")
            return
        if deleted:
            log.info("retention purge", extra={"deleted": deleted})

    # -- reads -----------------------------------------------------------------------------
    async def ListAnomalies(
        self, request: validator_pb2.ListAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> validator_pb2.ListAnomaliesResponse:
        try:
            where = self._filter(request.currency, request.source, request.reason, request.kind)
            where = AnomalyFilter(
                where.currency,
                where.source,
                where.reason,
                where.kind,
                _day("start_date", request.start_date),
                _day("end_date", request.end_date),
            )
            if where.start_day and where.end_day and where.start_day > where.end_day:
                raise ValueError("start_date: after end_date")
            size = request.page_size or DEFAULT_PAGE
            if size > MAX_PAGE:
                raise ValueError(f"page_size: at most {MAX_PAGE}")
            before = None
            if request.page_token:
                if not request.page_token.isdigit():
                    raise ValueError("page_token: not a token from a previous response")
                before = int(request.page_token)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        rows = await asyncio.to_thread(self.store.list_anomalies, where, size + 1, before)
        more = len(rows) > size
        rows = rows[:size]
        return validator_pb2.ListAnomaliesResponse(
            anomalies=[anomaly_to_proto(a) for a in rows],
            next_page_token=str(rows[-1].id) if more and rows else "",
        )

    async def WatchAnomalies(
        self, request: validator_pb2.WatchAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[validator_pb2.WatchAnomaliesResponse]:
        try:
            where = self._filter(request.currency, request.source, request.reason, 0)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        with self.hub.subscribe() as sub:
            cursor = request.after_id
            replay = request.after_id > 0
            while True:
                if replay or sub.overflowed:
                    sub.overflowed = False
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    while True:
                        rows = await asyncio.to_thread(self.store.anomalies_after, where, cursor, 500)
                        for a in rows:
                            cursor = a.id
                            yield validator_pb2.WatchAnomaliesResponse(anomaly=anomaly_to_proto(a))
                        if len(rows) < 500:
                            break
                    replay = False
                anomaly = await sub.queue.get()
                if anomaly.id > cursor and where.matches(anomaly):
                    cursor = anomaly.id
                    yield validator_pb2.WatchAnomaliesResponse(anomaly=anomaly_to_proto(anomaly))

    async def GetQuality(
        self, request: validator_pb2.GetQualityRequest, context: grpc.aio.ServicerContext
    ) -> validator_pb2.GetQualityResponse:
        try:
            currency = _currency("currency", request.currency, required=True)
            day = _day("date", request.date)
            if request.kind == common_pb2.OBSERVATION_KIND_UNSPECIFIED:
                kind = REFERENCE
            elif int(request.kind) in KIND_NAMES:
                kind = KIND_NAMES[int(request.kind)]
            else:
                raise ValueError("kind: unknown")
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        record = await asyncio.to_thread(self.store.get_quality, kind, currency, day or None)
        if record is None:
            where = f" on or before {day}" if day else ""
            await context.abort(grpc.StatusCode.NOT_FOUND, f"currency: no {kind} rate of {currency}{where}")
        assert record is not None
        return validator_pb2.GetQualityResponse(record=quality_to_proto(record))

    async def ListSourceStates(
        self, request: validator_pb2.ListSourceStatesRequest, context: grpc.aio.ServicerContext
    ) -> validator_pb2.ListSourceStatesResponse:
        states = self.engine.source_states(self.clock())
        return validator_pb2.ListSourceStatesResponse(sources=[source_to_proto(s) for s in states])

    @staticmethod
    def _filter(currency: str, source: str, reason: str, kind: int) -> AnomalyFilter:
        if kind and kind not in KIND_NAMES:
            raise ValueError("kind: unknown")
        return AnomalyFilter(
            currency=_currency("currency", currency, required=False),
            source=source.strip(),
            reason=reason.strip(),
            kind=KIND_NAMES.get(kind, ""),
        )
