"""gRPC servicers of the rates service: the public RatesService and the internal ingest API."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, NotFound, QueryError, Unavailable
from kurs_common.rate import Rate, observed
from kurs_common.timeutil import DateFormatError, from_timestamp, parse_date, to_timestamp, utcnow
from kurs_rates import ticks
from kurs_rates.book import LatestBook
from kurs_rates.ingest import Ingestor
from kurs_rates.model import BLEND, PIVOT, RateKind
from kurs_rates.queries import RateQueries, rebase_rates

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_INGEST_BATCH = 20_000


def to_proto_rate(rate: Rate) -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=rate.currency,
        value=rate.value,
        observed_at=to_timestamp(observed(rate.observed_at)),
        date=rate.day.isoformat(),
        sources=rate.sources,
        replay=rate.replay,
        flag=rate.flag,
    )


async def abort_for(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    if isinstance(exc, InvalidArgument):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{exc.field}: {exc.reason}")
    if isinstance(exc, NotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, f"{exc.field}: {exc.reason}")
    if isinstance(exc, Unavailable):
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")
    if isinstance(exc, TimeoutError):
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "store did not answer in time")
    raise exc


async def guarded(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (QueryError, Unavailable, TimeoutError) as exc:
        await abort_for(context, exc)


LATEST_CACHE_ENTRIES = 1024


class RatesServicer(rates_pb2_grpc.RatesServiceServicer):
    def __init__(self, queries: RateQueries, book: LatestBook) -> None:
        self.queries = queries
        self.book = book
        # GetLatestRates replies of the current book state, keyed (version, sequence, base, symbols).
        self._latest_cache: dict[tuple[int, int, str, tuple[str, ...]], rates_pb2.GetLatestRatesResponse] = {}

    async def GetLatestRates(
        self, request: rates_pb2.GetLatestRatesRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.GetLatestRatesResponse:
        if request.source:  # a publisher's own newest figures, from the store
            published = await guarded(
                context, lambda: self.queries.latest(request.base, request.symbols, request.source)
            )
            return rates_pb2.GetLatestRatesResponse(
                base=published.base,
                date=published.day.isoformat() if published.day else "",
                rates=[to_proto_rate(r) for r in published.rates],
                sequence=self.book.sequence,
            )
        key = (self.book.version, self.book.sequence, request.base, tuple(request.symbols))
        cached = self._latest_cache.get(key)
        if cached is not None:
            return cached
        answer = await guarded(context, lambda: self.queries.latest(request.base, request.symbols))
        reply = rates_pb2.GetLatestRatesResponse(
            base=answer.base,
            date=answer.day.isoformat() if answer.day else "",
            rates=[to_proto_rate(r) for r in answer.rates],
            sequence=key[1],
        )
        if self._latest_cache and next(iter(self._latest_cache))[:2] != key[:2]:
            self._latest_cache.clear()  # the book moved on: every cached reply is stale
        if len(self._latest_cache) < LATEST_CACHE_ENTRIES:
            self._latest_cache[key] = reply
        return reply

    def ListTicks(
        self, request: rates_pb2.ListTicksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rates_pb2.ListTicksResponse]:
        """Live ticks over a time range: kurs_rates.ticks."""
        return ticks.list_ticks(self.queries.store, request, context)

    async def GetHistoricalRates(
        self, request: rates_pb2.GetHistoricalRatesRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.GetHistoricalRatesResponse:
        requested, answer = await guarded(
            context,
            lambda: self.queries.historical(request.date, request.base, request.symbols, request.source),
        )
        return rates_pb2.GetHistoricalRatesResponse(
            base=answer.base,
            date=answer.day.isoformat() if answer.day else "",
            requested_date=requested.isoformat(),
            rates=[to_proto_rate(r) for r in answer.rates],
        )

    async def GetTimeSeries(
        self, request: rates_pb2.GetTimeSeriesRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.GetTimeSeriesResponse:
        answer = await guarded(
            context,
            lambda: self.queries.timeseries(
                request.start_date, request.end_date, request.base, request.symbols, request.source
            ),
        )
        return rates_pb2.GetTimeSeriesResponse(
            base=answer.base,
            start_date=answer.start.isoformat(),
            end_date=answer.end.isoformat(),
            days=[rates_pb2.TimeSeriesDay(date=d.isoformat(), rates=r) for d, r in answer.days.items()],
            sources=answer.sources,
        )

    async def GetTimeSeriesJson(
        self, request: rates_pb2.GetTimeSeriesJsonRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.GetTimeSeriesJsonResponse:
        answer = await guarded(
            context,
            lambda: self.queries.timeseries_json(
                request.start_date, request.end_date, request.base, request.symbols, request.source
            ),
        )
        return rates_pb2.GetTimeSeriesJsonResponse(
            base=answer.base,
            start_date=answer.start.isoformat(),
            end_date=answer.end.isoformat(),
            rates_json=answer.rates_json,
            sources=answer.sources,
        )

    async def Convert(
        self, request: rates_pb2.ConvertRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.ConvertResponse:
        answer = await guarded(
            context,
            lambda: self.queries.convert(
                request.from_currency, request.to_currency, request.amount, request.date, request.source
            ),
        )
        return rates_pb2.ConvertResponse(
            from_currency=answer.from_currency,
            to_currency=answer.to_currency,
            amount=answer.amount,
            rate=answer.rate,
            result=answer.result,
            date=answer.day.isoformat(),
            sources=answer.sources,
        )

    async def ListCurrencies(
        self, request: rates_pb2.ListCurrenciesRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.ListCurrenciesResponse:
        from kurs_common.currencies import lookup, name_of

        ranges = await guarded(context, self.queries.currency_ranges)
        current = self.book.effective()
        out = []
        for r in ranges:
            info = lookup(r.code)
            last = max(r.last_day, current[r.code].day) if r.code in current else r.last_day
            out.append(
                rates_pb2.Currency(
                    code=r.code,
                    name=name_of(r.code),
                    first_date=r.first_day.isoformat(),
                    last_date=last.isoformat(),
                    active=info.active if info else True,
                )
            )
        return rates_pb2.ListCurrenciesResponse(currencies=out)

    async def ListPublishers(
        self, request: rates_pb2.ListPublishersRequest, context: grpc.aio.ServicerContext
    ) -> rates_pb2.ListPublishersResponse:
        publishers = await guarded(context, self.queries.publishers)
        return rates_pb2.ListPublishersResponse(
            publishers=[
                rates_pb2.Publisher(
                    source=p.source,
                    first_date=p.first_day.isoformat(),
                    last_date=p.last_day.isoformat(),
                    currencies=[
                        rates_pb2.PublisherCurrency(
                            code=c.code, first_date=c.first_day.isoformat(), last_date=c.last_day.isoformat()
                        )
                        for c in p.currencies
                    ],
                )
                for p in publishers.values()
            ]
        )

    async def StreamRates(
        self, request: rates_pb2.StreamRatesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rates_pb2.StreamRatesResponse]:
        async def params() -> tuple[str, list[str] | None]:
            served = await self.queries.served()
            base = validation.currency("base", request.base or "USD", served)
            return base, validation.symbols("symbols", request.symbols, served)

        base, symbols = await guarded(context, params)
        with self.book.subscribe() as sub:
            sent: dict[str, str] = {}
            snapshot_due = True
            sequence = self.book.sequence
            missed = self.book.since(request.since_sequence) if request.since_sequence else None
            if missed is not None:
                # Resume: the client holds everything up to since_sequence. Pretend we sent the
                # current values of what did not change since; the first pass then sends one
                # update with the current values of everything that did (coalesced).
                snapshot_due = False
                touched = {r.currency for change in missed for r in change.rates}
                entries = self.book.effective()
                if base in touched:
                    touched = set(entries) | {PIVOT}
                if base == PIVOT or base in entries:
                    current = rebase_rates(entries, base, symbols)
                    sent = {r.currency: r.value for r in current if r.currency not in touched}
            while True:
                entries = self.book.effective()
                if base != PIVOT and base not in entries:
                    quoted: tuple[Rate, ...] = ()
                else:
                    quoted = rebase_rates(entries, base, symbols)
                day = max((r.day for r in quoted), default=None)
                if not snapshot_due and sent.keys() - {r.currency for r in quoted}:
                    # A currency is no longer published (e.g. missing from the newest fixing): an
                    # update cannot say "gone", a snapshot replaces the subscriber's whole view.
                    snapshot_due = True
                if snapshot_due:
                    snapshot_due = False
                    sent = {r.currency: r.value for r in quoted}
                    yield rates_pb2.StreamRatesResponse(
                        sequence=sequence,
                        snapshot=rates_pb2.RateSnapshot(
                            base=base,
                            date=day.isoformat() if day else "",
                            rates=[to_proto_rate(r) for r in quoted],
                        ),
                    )
                else:
                    fresh = [r for r in quoted if sent.get(r.currency) != r.value]
                    if fresh:
                        sent.update((r.currency, r.value) for r in fresh)
                        yield rates_pb2.StreamRatesResponse(
                            sequence=sequence,
                            update=rates_pb2.RateUpdate(
                                base=base,
                                date=day.isoformat() if day else "",
                                rates=[to_proto_rate(r) for r in fresh],
                            ),
                        )
                sequence = (await sub.queue.get()).sequence
                if sub.overflowed:
                    # Fell behind: drop the backlog and start over from a fresh snapshot.
                    while not sub.queue.empty():
                        sequence = sub.queue.get_nowait().sequence
                    sub.overflowed = False
                    snapshot_due = True


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
    if raw_kind == ingest_pb2.RATE_KIND_REFERENCE:
        kind = RateKind.REFERENCE
    elif raw_kind == ingest_pb2.RATE_KIND_LIVE:
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
