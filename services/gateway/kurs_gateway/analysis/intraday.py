"""Intraday OHLC bars (1m, 5m, 15m, 1h) from the live ticks of RatesService.ListTicks.

Exact: every figure of a bar is one of the tick strings the rates service sent (the stored
figure for base EUR, a 10-significant-digit cross otherwise); open is the period's first tick,
close its last, high and low by `Decimal` comparison (the first of equal values is kept). Periods
are aligned on the UTC epoch (every interval divides a day, so on UTC midnight) and a period
without a tick has no bar: there is no price to report, and carrying the previous close forward
would invent one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common.errors import InvalidArgument, NotFound
from kurs_common.timeutil import to_timestamp

INTRADAY_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
MAX_INTRADAY_DAYS = 31  # RatesService.ListTicks answers at most 31 days per call
MAX_INTRADAY_SYMBOLS = 20
TICKS_DEADLINE = 60.0  # seconds for the whole ListTicks stream

Tick = tuple[dt.datetime, str]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def period_of(at: dt.datetime, seconds: int) -> dt.datetime:
    """The start of the `seconds`-long period holding `at` (aligned on the UTC epoch)."""
    stamp = int(at.timestamp() // seconds) * seconds
    return dt.datetime.fromtimestamp(stamp, dt.UTC)


def bars(ticks: Iterable[Tick], seconds: int) -> list[dict[str, Any]]:
    """OHLC of every period of `seconds` holding at least one tick, oldest first.

    `ticks` are (observed_at, decimal string); ticks at equal instants keep their order.
    """
    ordered = sorted(ticks, key=lambda t: t[0])  # stable: equal instants keep the stream's order
    out: list[dict[str, Any]] = []
    key: dt.datetime | None = None
    high = low = Decimal(0)
    for at, text in ordered:
        value = Decimal(text)
        period = period_of(at, seconds)
        if period != key:
            key, high, low = period, value, value
            out.append(
                {
                    "period_start": _iso(period),
                    "open": text,
                    "high": text,
                    "low": text,
                    "close": text,
                    "count": 0,
                    "first_at": _iso(at),
                    "last_at": _iso(at),
                }
            )
        bar = out[-1]
        if value > high:
            high, bar["high"] = value, text
        if value < low:
            low, bar["low"] = value, text
        bar["close"], bar["last_at"] = text, _iso(at)
        bar["count"] += 1
    return out


def day_range(first: dt.date, last: dt.date, param: str = "end_date") -> tuple[dt.datetime, dt.datetime]:
    """[first 00:00Z, last + 1 day 00:00Z): whole UTC days, at most MAX_INTRADAY_DAYS of them."""
    if (last - first).days + 1 > MAX_INTRADAY_DAYS:
        raise InvalidArgument(param, f"intraday bars may span at most {MAX_INTRADAY_DAYS} days")
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    return start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)


@dataclass(slots=True)
class Ticks:
    base: str
    by_currency: dict[str, list[Tick]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)


async def fetch_ticks(
    stub: rates_pb2_grpc.RatesServiceStub,
    base: str,
    symbols: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    param: str = "start_date",
) -> Ticks:
    """Every tick of `symbols` against `base` in [start, end); NotFound when there is none."""
    if not symbols:
        raise InvalidArgument("symbols", "intraday bars need the currencies to follow (1 to 20)")
    if len(symbols) > MAX_INTRADAY_SYMBOLS:
        raise InvalidArgument("symbols", f"at most {MAX_INTRADAY_SYMBOLS} currencies for intraday bars")
    if base in symbols:
        raise InvalidArgument("symbols", f"{base} is the base")
    request = rates_pb2.ListTicksRequest(
        base=base, symbols=list(symbols), start=to_timestamp(start), end=to_timestamp(end)
    )
    out = Ticks(base)
    async for reply in stub.ListTicks(request, timeout=TICKS_DEADLINE):
        out.base = reply.base or out.base
        for tick in reply.ticks:
            at = tick.observed_at.ToDatetime(dt.UTC)
            out.by_currency.setdefault(tick.currency, []).append((at, tick.value))
            out.sources.add(tick.source)
    if not out.by_currency:
        raise NotFound(param, f"no live ticks of {', '.join(symbols)} between {_iso(start)} and {_iso(end)}")
    return out
