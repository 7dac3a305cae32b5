"""One series per currency over any range, paged from RatesService.GetTimeSeries.

The rates service answers at most `validation.MAX_RANGE_DAYS` days per call, so a longer range is
split into consecutive windows fetched concurrently. A window that ends before the first stored
day answers NOT_FOUND; it simply contributes nothing. Values stay the decimal strings the rates
service sent (published figures for base EUR, 10-significant-digit cross rates otherwise).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import validation
from kurs_common.errors import InvalidArgument, NotFound

MAX_ANALYSIS_DAYS = 3660  # ten years per request, paged in windows of MAX_RANGE_DAYS
EARLIEST = dt.date(1900, 1, 1)  # warm-up and training windows never reach before this


def before(day: dt.date, days: int) -> dt.date:
    """`days` before `day`, but not before EARLIEST (no date arithmetic overflow)."""
    if (day - EARLIEST).days <= days:
        return min(day, EARLIEST)
    return day - dt.timedelta(days=days)


@dataclass(slots=True)
class Series:
    """Publication days and values (decimal strings) of one currency, oldest first."""

    dates: list[dt.date] = field(default_factory=list)
    values: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Fetched:
    base: str
    series: dict[str, Series]
    sources: tuple[str, ...]


def windows(
    first: dt.date, last: dt.date, days: int = validation.MAX_RANGE_DAYS
) -> list[tuple[dt.date, dt.date]]:
    """Consecutive inclusive windows of at most `days` days covering first..last."""
    out: list[tuple[dt.date, dt.date]] = []
    start = first
    while start <= last:
        end = min(last, start + dt.timedelta(days=days - 1))
        out.append((start, end))
        start = end + dt.timedelta(days=1)
    return out


def analysis_range(start_field: str, start: str, end_field: str, end: str) -> tuple[dt.date, dt.date]:
    """Like validation.date_range, with the longer limit analysis allows (it pages)."""
    first = validation.date(start_field, start)
    last = validation.date(end_field, end)
    if first > last:
        raise InvalidArgument(start_field, f"{start_field} {first} is after {end_field} {last}")
    if (last - first).days + 1 > MAX_ANALYSIS_DAYS:
        raise InvalidArgument(end_field, f"the range may span at most {MAX_ANALYSIS_DAYS} days")
    return first, last


async def fetch(
    stub: rates_pb2_grpc.RatesServiceStub,
    base: str,
    symbols: Sequence[str],
    first: dt.date,
    last: dt.date,
    deadline: float,
    field: str = "start_date",
) -> Fetched:
    """Every publication day of first..last for `symbols` (all when empty) against `base`.

    Raises NotFound when the whole range holds no rate; gRPC errors other than a window's
    NOT_FOUND propagate (the app turns them into problems).
    """

    async def one(start: dt.date, end: dt.date) -> rates_pb2.GetTimeSeriesResponse | None:
        request = rates_pb2.GetTimeSeriesRequest(
            start_date=start.isoformat(), end_date=end.isoformat(), base=base, symbols=list(symbols)
        )
        try:
            reply: rates_pb2.GetTimeSeriesResponse = await stub.GetTimeSeries(request, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply

    replies = await asyncio.gather(*(one(a, b) for a, b in windows(first, last)))
    series: dict[str, Series] = {}
    sources: set[str] = set()
    code = base
    for reply in replies:
        if reply is None:
            continue
        code = reply.base or code
        sources.update(reply.sources)
        for day in reply.days:
            date = dt.date.fromisoformat(day.date)
            for currency, value in day.rates.items():
                entry = series.get(currency)
                if entry is None:
                    entry = series[currency] = Series()
                entry.dates.append(date)
                entry.values.append(value)
    if not series:
        raise NotFound(field, f"no rates between {first} and {last}")
    for entry in series.values():  # windows arrive in order, days within a reply too; be sure
        if any(b <= a for a, b in zip(entry.dates, entry.dates[1:], strict=False)):
            pairs = sorted(zip(entry.dates, entry.values, strict=True))
            entry.dates = [d for d, _ in pairs]
            entry.values = [v for _, v in pairs]
    return Fetched(code, dict(sorted(series.items())), tuple(sorted(sources)))
