"""ValidatorService: validate a batch, forward the consensus to the rates service, expose anomalies
and quality records."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.rate import Rate, RateKind
from kurs_common.timeutil import DateFormatError, parse_date, to_timestamp, utcnow
from kurs_validator.engine import ValidationEngine
from kurs_validator.hub import AnomalyHub
from kurs_validator.model import (
    Anomaly,
    BatchOutcome,
    Confidence,
    Contribution,
    QualityRecord,
    SourceStatus,
)
from kurs_validator.store import AnomalyFilter, ValidatorStore

log = logging.getLogger(__name__)

MAX_BATCH = 50_000
DEFAULT_PAGE = 100
MAX_PAGE = 1_000
# Rates kept for a retry while the rates service cannot take them. At this size new
# batches are refused (UNAVAILABLE, not acknowledged) until the outbox drains: never dropped.
# Bounded at MAX_OUTBOX plus one batch's publications.
MAX_OUTBOX = 2_000_000

_RATE_KINDS = {REFERENCE: ingest_pb2.RATE_KIND_REFERENCE, LIVE: ingest_pb2.RATE_KIND_LIVE}
_OBS_KINDS = {REFERENCE: validator_pb2.OBSERVATION_KIND_REFERENCE, LIVE: validator_pb2.OBSERVATION_KIND_LIVE}
_KIND_NAMES: dict[int, str] = {int(v): k for k, v in _OBS_KINDS.items()}
_CONFIDENCE = {
    Confidence.HIGH: validator_pb2.CONFIDENCE_HIGH,
    Confidence.MEDIUM: validator_pb2.CONFIDENCE_MEDIUM,
    Confidence.LOW: validator_pb2.CONFIDENCE_LOW,
    Confidence.UNVERIFIED: validator_pb2.CONFIDENCE_UNVERIFIED,
}


@functools.lru_cache(maxsize=1024)
def _stamp(value: dt.datetime) -> Timestamp | None:
    """One Timestamp per instant (a batch shares a few); only ever copied into messages, never mutated."""
    return to_timestamp(value)


@functools.lru_cache(maxsize=1024)
def _iso_day(value: dt.date) -> str:
    return value.isoformat()


def ingest_request(items: Sequence[Rate]) -> ingest_pb2.IngestRatesRequest:
    """The IngestRates request of a chunk of the outbox: each rate in its series (a publisher's
    own figure, a fixing's consensus in the blend, a live tick under its source).

    Each AcceptedRate is built in place (`rates.add`): building messages apart and handing the
    list to the request copies every one of them again (2.7x the time on a history batch).
    """
    request = ingest_pb2.IngestRatesRequest()
    add = request.rates.add
    kinds = _RATE_KINDS
    for item in items:
        add(
            source=item.source,
            kind=kinds[item.kind],
            base=item.base,
            currency=item.currency,
            value=item.value,
            date=_iso_day(item.day),
            observed_at=_stamp(item.observed_at),
            sources=item.sources,
            replay=item.replay,
            flag=item.flag,
        )
    return request


# Rejections that say an observation is not a usable figure at all (never stored). Any other
# rejection (an outlier, a jump, a peg break, ...) is a judgement: the publisher's figure is kept
# and served under its publisher, flagged with the reason, and only kept out of the blend.
NOT_A_FIGURE = frozenset(
    {
        "bad_date",
        "future_dated",
        "missing_kind",
        "missing_observed_at",
        "missing_source",
        "non_positive",
        "not_a_number",
        "retired_currency",
        "same_currency",
        "unknown_currency",
    }
)


def published_figures(observations: Sequence[Observation], outcome: BatchOutcome) -> list[Rate]:
    """Every reference figure of a batch as its publisher published it, flagged where judged."""
    judged = {r.index: r.reason for r in outcome.rejections}
    out: list[Rate] = []
    for i, obs in enumerate(observations):
        reason = judged.get(i, "")
        if obs.kind != REFERENCE or reason in NOT_A_FIGURE or obs.observed_at is None:
            continue
        out.append(
            Rate(
                obs.source,
                RateKind.REFERENCE,
                obs.quote,
                obs.value,
                dt.date.fromisoformat(obs.day),
                obs.observed_at,
                (obs.source,),
                obs.replay,
                obs.base,
                reason,
            )
        )
    return out


def observations_from_proto(items: Sequence[validator_pb2.Observation]) -> list[Observation]:
    """Observation.from_proto for a batch (timestamps shared by a batch are converted once)."""
    return [Observation.from_proto(o) for o in items]


def anomaly_to_proto(a: Anomaly) -> validator_pb2.Anomaly:
    return validator_pb2.Anomaly(
        id=a.id,
        reason=a.reason,
        detail=a.detail,
        source=a.source,
        feed=a.feed,
        kind=_OBS_KINDS.get(a.kind, validator_pb2.OBSERVATION_KIND_UNSPECIFIED),
        base=a.base,
        quote=a.quote,
        value=a.value,
        currency=a.currency,
        date=a.day,
        observed_at=to_timestamp(a.observed_at),
        expected=a.expected,
        detected_at=to_timestamp(a.detected_at),
    )


def _contribution_to_proto(c: Contribution) -> validator_pb2.Contribution:
    return validator_pb2.Contribution(
        source=c.source,
        value=c.value,
        comparison_value=c.comparison,
        observed_at=to_timestamp(c.observed_at),
        weight=c.weight,
        reason=c.reason,
    )


def quality_to_proto(q: QualityRecord) -> validator_pb2.QualityRecord:
    return validator_pb2.QualityRecord(
        kind=_OBS_KINDS[q.kind],
        currency=q.currency,
        date=q.day.isoformat(),
        observed_at=to_timestamp(q.observed_at),
        value=q.value,
        source=q.source,
        contributors=[_contribution_to_proto(c) for c in q.contributors],
        excluded=[_contribution_to_proto(c) for c in q.excluded],
        spread=q.spread,
        consensus=q.consensus,
        newest_observed_at=to_timestamp(q.newest_observed_at),
        newest_input_age_seconds=q.newest_input_age_seconds,
        confidence=_CONFIDENCE[q.confidence],
        published_at=to_timestamp(q.published_at),
    )


def source_to_proto(s: SourceStatus) -> validator_pb2.SourceState:
    return validator_pb2.SourceState(
        source=s.source,
        kind=_OBS_KINDS[s.kind],
        last_observed_at=to_timestamp(s.last_observed_at),
        last_date=s.last_day.isoformat(),
        freshness=validator_pb2.SOURCE_FRESHNESS_STALE if s.stale else validator_pb2.SOURCE_FRESHNESS_FRESH,
        window_seconds=s.window.total_seconds(),
        accepted=s.accepted,
        rejected=s.rejected,
    )


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
            if request.kind == validator_pb2.OBSERVATION_KIND_UNSPECIFIED:
                kind = REFERENCE
            elif int(request.kind) in _KIND_NAMES:
                kind = _KIND_NAMES[int(request.kind)]
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
        if kind and kind not in _KIND_NAMES:
            raise ValueError("kind: unknown")
        return AnomalyFilter(
            currency=_currency("currency", currency, required=False),
            source=source.strip(),
            reason=reason.strip(),
            kind=_KIND_NAMES.get(kind, ""),
        )
