"""gRPC servicer of the public RatesService (the ingest API is kurs_rates.ingest_servicer)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import validation
from kurs_common.rate import Rate, observed
from kurs_common.timeutil import to_timestamp
from kurs_rates import ticks
from kurs_rates.book import LatestRates
from kurs_rates.grpc_status import guarded
from kurs_rates.model import PIVOT
from kurs_rates.queries import RateQueries, rebase_rates


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


LATEST_CACHE_ENTRIES = 1024


class RatesServicer(rates_pb2_grpc.RatesServiceServicer):
    def __init__(self, queries: RateQueries, book: LatestRates) -> None:
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
