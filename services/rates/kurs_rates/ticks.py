"""Live tick history: RatesService.ListTicks and the retention of stored ticks.

Live ticks (exchanges' prices) are stored durably by both stores (`live_rates`, keyed on source,
currency and observed_at) and quoted per the pivot (EUR). ListTicks reads them over a time range
in keyset pages and answers them against any base:

* base EUR: every tick of a symbol, its stored string digit for digit (when two sources ticked
  one currency at the same instant, one tick: the later source id's, in sort order);
* another base: at every instant where a symbol or the base ticked, the cross of the newest tick
  of each side (seeded with each side's last tick before `start`), rounded like every cross rate
  (kurs_common.money, 10 significant digits). Ticks of one instant are applied together, so a
  batch that moved both sides yields one cross tick, not two.

Retention: ticks older than `retention` are deleted every `interval` (each source and currency
keeps its newest tick, so `LatestRates` survives a restart); a retention of 0 keeps them all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from kurs.rates.v1 import rates_pb2
from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, QueryError, Unavailable
from kurs_common.timeutil import from_timestamp, to_timestamp, utcnow
from kurs_rates.model import PIVOT, Rate, TickKey, TickSpan
from kurs_rates.store import RateStore

log = logging.getLogger(__name__)

DEFAULT_BASE = "USD"
MAX_SYMBOLS = 20
MAX_SPAN = dt.timedelta(days=31)
PAGE = 10_000  # ticks read from the store per query
CHUNK = 5_000  # ticks per ListTicksResponse


@dataclass(frozen=True, slots=True)
class Tick:
    currency: str
    value: str  # units of currency per one base
    observed_at: dt.datetime
    source: str
    replay: bool


@dataclass(frozen=True, slots=True)
class TickQuery:
    base: str
    symbols: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    source: str


def parse(request: rates_pb2.ListTicksRequest) -> TickQuery:
    """Validate a ListTicksRequest; InvalidArgument names the field."""
    base = validation.currency("base", request.base) if request.base else DEFAULT_BASE
    if not request.symbols:
        raise InvalidArgument("symbols", "at least one currency is required")
    if len(request.symbols) > MAX_SYMBOLS:
        raise InvalidArgument("symbols", f"at most {MAX_SYMBOLS} currencies")
    symbols: list[str] = []
    for text in request.symbols:
        code = validation.currency("symbols", text)
        if code == base:
            raise InvalidArgument("symbols", f"{code} is the base")
        if code not in symbols:
            symbols.append(code)
    if not request.HasField("start"):
        raise InvalidArgument("start", "is required")
    if not request.HasField("end"):
        raise InvalidArgument("end", "is required")
    start, end = from_timestamp(request.start), from_timestamp(request.end)
    if end <= start:
        raise InvalidArgument("end", "must be after start")
    if end - start > MAX_SPAN:
        raise InvalidArgument("end", f"the range may span at most {MAX_SPAN.days} days")
    return TickQuery(base, tuple(symbols), start, end, request.source)


class _Cross:
    """The newest tick of every leg and the ticks of symbols it implies, one instant at a time."""

    def __init__(self, query: TickQuery) -> None:
        self.base = query.base
        self.symbols = query.symbols
        self.newest: dict[str, Rate] = {}

    def value_of(self, code: str) -> str | None:
        """Units of `code` per one base from the newest ticks, or None while a leg is unknown."""
        if self.base == PIVOT:
            tick = self.newest.get(code)
            return tick.value if tick else None
        base = self.newest.get(self.base)
        if base is None:
            return None
        if code == PIVOT:
            return money.invert(base.value)
        tick = self.newest.get(code)
        return money.cross_rate(base.value, tick.value) if tick else None

    def emit(self, moved: set[str], at: dt.datetime) -> list[Tick]:
        """The ticks of the symbols that `moved` (all of them when the base did) at instant `at`."""
        out: list[Tick] = []
        for code in self.symbols:
            if code not in moved and self.base not in moved:
                continue
            value = self.value_of(code)
            if value is None:
                continue
            legs = [t for t in (self.newest.get(code), self.newest.get(self.base)) if t is not None]
            newest = max(legs, key=lambda t: t.observed_at)  # the symbol's on a tie (max keeps the first)
            out.append(Tick(code, value, at, newest.source, any(t.replay for t in legs)))
        return out


async def ticks(store: RateStore, query: TickQuery) -> AsyncIterator[list[Tick]]:
    """The ticks of `query`, oldest first, in lists of at most CHUNK."""
    legs = sorted({*query.symbols, query.base} - {PIVOT})
    cross = _Cross(query)
    if query.base != PIVOT:  # a symbol's first tick in the range needs the base's value before it
        for code in legs:
            seed = await store.live_before(code, query.start, query.source)
            if seed is not None:
                cross.newest[code] = seed
    out: list[Tick] = []
    moved: set[str] = set()
    instant: dt.datetime | None = None
    span = TickSpan(legs, query.start, query.end, query.source)
    after: TickKey | None = None
    while True:
        page = await store.live_ticks(span, after, PAGE)
        for row in page:
            if instant is not None and row.observed_at != instant:
                out.extend(cross.emit(moved, instant))
                moved.clear()
            instant = row.observed_at
            cross.newest[row.currency] = row
            moved.add(row.currency)
        while len(out) >= CHUNK:
            yield out[:CHUNK]
            out = out[CHUNK:]
        if len(page) < PAGE:
            break
        last = page[-1]
        after = (last.observed_at, last.source, last.currency)
    if instant is not None:
        out.extend(cross.emit(moved, instant))
    while out:
        yield out[:CHUNK]
        out = out[CHUNK:]


async def list_ticks(
    store: RateStore, request: rates_pb2.ListTicksRequest, context: grpc.aio.ServicerContext
) -> AsyncIterator[rates_pb2.ListTicksResponse]:
    """RatesService.ListTicks: bad input is INVALID_ARGUMENT naming the field."""
    try:
        query = parse(request)
        async for chunk in ticks(store, query):
            yield rates_pb2.ListTicksResponse(
                base=query.base,
                ticks=[
                    rates_pb2.Tick(
                        currency=t.currency,
                        value=t.value,
                        observed_at=to_timestamp(t.observed_at),
                        source=t.source,
                        replay=t.replay,
                    )
                    for t in chunk
                ],
            )
    except QueryError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{exc.field}: {exc.reason}")
    except (Unavailable, TimeoutError) as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")


async def prune_forever(store: RateStore, retention: dt.timedelta, interval: float) -> None:
    """Delete ticks older than `retention` every `interval` seconds (first after one interval)."""
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await store.prune_live(utcnow() - retention)
        except (Unavailable, TimeoutError, OSError) as exc:
            log.warning("tick retention: prune failed, retrying later", extra={"error": str(exc)})
            continue
        if removed:
            log.info("tick retention: old live ticks deleted", extra={"ticks": removed})


__all__ = ["TickQuery", "list_ticks", "parse", "prune_forever", "ticks"]
