"""gRPC servicer of the internal ingest API: each accepted rate checked field by field, the valid
ones handed to the Ingestor, the others answered as typed per-item rejections."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from kurs_common import money, validation
from kurs_common.errors import InvalidArgument
from kurs_common.rate import Rate
from kurs_common.timeutil import DateFormatError, from_timestamp, parse_date, utcnow
from kurs_rates.grpc_status import guarded
from kurs_rates.ingest import Ingestor
from kurs_rates.model import BLEND, PIVOT, RateKind

log = logging.getLogger(__name__)

MAX_INGEST_BATCH = 20_000


# A business date may run ahead of UTC by the widest time zone offset (UTC+14).
DATE_AHEAD_OF_UTC = dt.timedelta(hours=14)


# Codes and dates repeat across every batch: each is validated once (both maps stay small: the
# codes are ISO's and crypto tickers, the dates are cut at _MEMO entries).
_CODES: dict[str, str] = {}
_DAYS: dict[str, dt.date] = {}
_MEMO = 100_000


def _code(field: str, text: str) -> str:
    code = validation.currency(field, text)
    if text == code:
        _CODES[text] = code
    return code


def _day(field: str, text: str) -> dt.date:
    try:
        day = parse_date(text)
    except DateFormatError as exc:
        raise InvalidArgument(field, str(exc)) from exc
    if len(_DAYS) >= _MEMO:
        _DAYS.clear()
    _DAYS[text] = day
    return day


# A batch shares a few instants (a fixing's publication time): each is converted once.
_INSTANTS: dict[tuple[int, int], dt.datetime] = {}


def _instant(ts: Timestamp) -> dt.datetime:
    key = (ts.seconds, ts.nanos)
    at = _INSTANTS.get(key)
    if at is None:
        if len(_INSTANTS) >= _MEMO:
            _INSTANTS.clear()
        at = _INSTANTS[key] = from_timestamp(ts)
    return at


def _to_stored(
    index: int, rate: ingest_pb2.AcceptedRate, latest: dt.datetime, last_day: dt.date | None = None
) -> Rate:
    """A validated rate; `latest` is the newest observation time accepted (now + clock skew),
    `last_day` the newest business date (latest + DATE_AHEAD_OF_UTC, computed once per batch).
    Each proto field is read once (a field read is not free) and the field name of an error is
    built only when there is one."""
    source, base_text, currency_text, value, date = (
        rate.source,
        rate.base,
        rate.currency,
        rate.value,
        rate.date,
    )
    if source == BLEND and base_text != PIVOT:
        raise InvalidArgument(
            f"rates[{index}].base", f"the blend is quoted per the pivot {PIVOT}, got {base_text!r}"
        )
    base = _CODES.get(base_text) or _code(f"rates[{index}].base", base_text)
    currency = _CODES.get(currency_text) or _code(f"rates[{index}].currency", currency_text)
    if base == currency:
        raise InvalidArgument(f"rates[{index}].currency", f"equals the base {base}")
    try:
        money.parse_rate(value)
    except money.DecimalFormatError as exc:
        raise InvalidArgument(f"rates[{index}].value", str(exc)) from exc
    day = _DAYS.get(date) or _day(f"rates[{index}].date", date)
    if not source:
        raise InvalidArgument(f"rates[{index}].source", "is required")
    raw_kind = rate.kind
    if raw_kind == common_pb2.OBSERVATION_KIND_REFERENCE:
        kind = RateKind.REFERENCE
    elif raw_kind == common_pb2.OBSERVATION_KIND_LIVE:
        kind = RateKind.LIVE
    else:
        raise InvalidArgument(f"rates[{index}].kind", "must be REFERENCE or LIVE")
    if not rate.HasField("observed_at"):
        raise InvalidArgument(f"rates[{index}].observed_at", "is required")
    observed_at = _instant(rate.observed_at)
    if observed_at > latest:
        raise InvalidArgument(
            f"rates[{index}].observed_at",
            f"{observed_at.isoformat()} is in the future (accepted up to {latest.isoformat()})",
        )
    if day > (last_day or (latest + DATE_AHEAD_OF_UTC).date()):
        raise InvalidArgument(f"rates[{index}].date", f"{day.isoformat()} is in the future")
    sources = rate.sources
    return Rate(
        source,
        kind,
        currency,
        value,
        day,
        observed_at,
        tuple(sources) if sources else (source,),
        rate.replay,
        base,
        rate.flag,
    )


class IngestServicer(ingest_pb2_grpc.RatesIngestServiceServicer):
    def __init__(
        self,
        ingestor: Ingestor,
        max_future_skew: dt.timedelta = dt.timedelta(minutes=5),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.ingestor = ingestor
        self.max_future_skew = max_future_skew
        self.clock = clock

    async def IngestRates(
        self, request: ingest_pb2.IngestRatesRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.IngestRatesResponse:
        if len(request.rates) > MAX_INGEST_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"rates: at most {MAX_INGEST_BATCH} per batch"
            )
        rates: list[Rate] = []
        rejections: list[common_pb2.ItemRejection] = []
        latest = self.clock() + self.max_future_skew
        last_day = (latest + DATE_AHEAD_OF_UTC).date()
        for i, rate in enumerate(request.rates):
            try:
                rates.append(_to_stored(i, rate, latest, last_day))
            except InvalidArgument as exc:
                field = exc.field.rpartition(".")[2]
                rejections.append(common_pb2.ItemRejection(index=i, field=field, reason=exc.reason))
        if rejections:
            log.warning(
                "rates refused",
                extra={"count": len(rejections), "first": f"{rejections[0].index}.{rejections[0].field}"},
            )
        outcome = await guarded(context, lambda: self.ingestor.ingest(rates))
        return ingest_pb2.IngestRatesResponse(
            inserted=outcome.inserted,
            updated=outcome.updated,
            unchanged=outcome.unchanged,
            sequence=outcome.sequence,
            buffered=outcome.buffered,
            rejections=rejections,
        )
