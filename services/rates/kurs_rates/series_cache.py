"""Columnar series cache: a time series' days as prebuilt JSON fragments, month by month.

A one-year, all-currency time series is ~7,500 figures. Answering it from the store each time
costs one store read, one Decimal division per cross rate, a protobuf map per day and a JSON
encode in the gateway (~27 ms in process, far more under load). Here each (source, month) is
read once and kept as columns (one entry per publication day: the day, its raw figures and its
contributors); for each base asked for, each day is rendered once into the JSON fragment
`"YYYY-MM-DD":{"AUD":"1.6","BGN":"1.9558",...}` (codes sorted, values from the very functions
the uncached path uses, so the same strings). A request then only selects the days of its
range (a bisection in the first and last month) and joins bytes.

Bounds and freshness:

* memory: the chunks' approximate sizes (raw figures plus rendered fragments) are counted; past
  `budget_bytes` the least recently used months are dropped (a month is ~20 days);
* a write through this process drops the months it touched (`forget`); a new reference set
  (this replica's or another's, via the fan-out) drops the reference source's months from
  that set's oldest day on (`forget_from`); with several replicas (`max_age`), a month older
  than `max_age` seconds is read again, which bounds how long a correction of an old day
  written through another replica stays unseen here;
* a month read while a write was being applied is used for that one answer only, not kept;
* concurrent misses of one source share one store read (single flight, per source).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson

Row = TypeVar("Row")
# A source's raw figures of one day, or None when that day has no figure usable here.
Render = Callable[[Row, str, Sequence[str] | None], dict[str, str] | None]
Loader = Callable[[dt.date, dt.date], Awaitable[list[tuple[dt.date, Row, frozenset[str]]]]]

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
RENDERED_BASES_PER_MONTH = 8  # a month keeps the fragments of its 8 most recent bases
# With several replicas on one database, how long a cached month is trusted (see max_age).
SHARED_MAX_AGE_SECONDS = 30.0


def month_of(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def month_span(month: int) -> tuple[dt.date, dt.date]:
    first = dt.date(month // 12, month % 12 + 1, 1)
    following = dt.date((month + 1) // 12, (month + 1) % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def fragment(day: dt.date, values: dict[str, str]) -> bytes:
    """One day of the series' JSON object, as orjson encodes it in a dict of days."""
    return orjson.dumps(day.isoformat()) + b":" + orjson.dumps(dict(sorted(values.items())))


@dataclass(slots=True)
class Chunk(Generic[Row]):
    """One (source, month): its publication days ascending, as parallel columns."""

    days: list[dt.date]
    rows: list[Row]
    contributors: list[frozenset[str]]
    loaded_at: float
    raw_size: int
    rendered: OrderedDict[str, list[bytes | None]] = field(default_factory=OrderedDict)
    rendered_size: int = 0
    kept: bool = False  # held by the cache (its size counted), else used for one answer only

    @property
    def size(self) -> int:
        return self.raw_size + self.rendered_size


@dataclass(frozen=True, slots=True)
class Selection:
    """The days of a range: their JSON fragments (days without the base left out) and every
    contributor named on any of its days."""

    fragments: list[bytes]
    contributors: frozenset[str]

    def rates_json(self) -> bytes:
        return b"{" + b",".join(self.fragments) + b"}"


class SeriesCache(Generic[Row]):
    def __init__(
        self,
        render: Render[Row],
        size_of: Callable[[Row], int],
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        max_age: float | None = None,
    ) -> None:
        self._render = render
        self._size_of = size_of
        self.budget_bytes = budget_bytes
        self.max_age = max_age
        self._chunks: OrderedDict[tuple[str, int], Chunk[Row]] = OrderedDict()
        self._size = 0
        self._generation = 0  # bumped by every forget, so a read racing a write is not kept
        self._loading: dict[str, asyncio.Lock] = {}  # one store read per source at a time
        self.reads = 0  # store reads made (for tests and metrics)

    # -- invalidation ---------------------------------------------------------------------
    def forget(self, source: str, days: Sequence[dt.date]) -> None:
        """Drop the months of `source` that contain any of `days` (their figures changed)."""
        self._generation += 1
        for month in {month_of(d) for d in days}:
            self._drop((source, month))

    def forget_from(self, source: str, day: dt.date | None) -> None:
        """Drop `source`'s months from the one holding `day` on (every month when None)."""
        self._generation += 1
        first = month_of(day) if day is not None else -1
        for key in [k for k in self._chunks if k[0] == source and k[1] >= first]:
            self._drop(key)

    def clear(self) -> None:
        self._generation += 1
        for chunk in self._chunks.values():
            chunk.kept = False
        self._chunks.clear()
        self._size = 0

    def _drop(self, key: tuple[str, int]) -> None:
        chunk = self._chunks.pop(key, None)
        if chunk is not None:
            chunk.kept = False
            self._size -= chunk.size

    @property
    def size(self) -> int:
        return self._size

    # -- reads ----------------------------------------------------------------------------
    async def select(
        self,
        source: str,
        first: dt.date,
        last: dt.date,
        base: str,
        symbols: Sequence[str] | None,
        load: Loader[Row],
    ) -> Selection:
        """The days of `source` in [first, last] against `base` (all codes when `symbols` is None)."""
        chunks = await self._chunks_for(source, first, last, load)
        fragments: list[bytes] = []
        contributors: set[str] = set()
        for chunk in chunks:
            lo = bisect.bisect_left(chunk.days, first)
            hi = bisect.bisect_right(chunk.days, last)
            if lo >= hi:
                continue
            if symbols is None:
                rendered = self._rendered(chunk, base)
                fragments.extend(f for f in rendered[lo:hi] if f is not None)
            else:  # a subset of codes: rendered per request (from the cached columns)
                for day, row in zip(chunk.days[lo:hi], chunk.rows[lo:hi], strict=True):
                    values = self._render(row, base, symbols)
                    if values is not None:
                        fragments.append(fragment(day, values))
            for names in chunk.contributors[lo:hi]:
                contributors |= names
        return Selection(fragments, frozenset(contributors))

    def _rendered(self, chunk: Chunk[Row], base: str) -> list[bytes | None]:
        rendered = chunk.rendered.get(base)
        if rendered is not None:
            chunk.rendered.move_to_end(base)
            return rendered
        rendered = []
        for day, row in zip(chunk.days, chunk.rows, strict=True):
            values = self._render(row, base, None)
            rendered.append(None if values is None else fragment(day, values))
        grown = sum(len(f) for f in rendered if f is not None) + 8 * len(rendered)
        if len(chunk.rendered) >= RENDERED_BASES_PER_MONTH:
            _, old = chunk.rendered.popitem(last=False)
            shrunk = sum(len(f) for f in old if f is not None) + 8 * len(old)
            chunk.rendered_size -= shrunk
            if chunk.kept:
                self._size -= shrunk
        chunk.rendered[base] = rendered
        chunk.rendered_size += grown
        if chunk.kept:
            self._size += grown
            self._evict()
        return rendered

    async def _chunks_for(
        self, source: str, first: dt.date, last: dt.date, load: Loader[Row]
    ) -> list[Chunk[Row]]:
        months = range(month_of(first), month_of(last) + 1)
        found, missing = self._held(source, months)
        if missing:
            # Concurrent misses of one source wait for each other's read (single flight), then
            # take what it brought and read only what is still missing.
            lock = self._loading.setdefault(source, asyncio.Lock())
            async with lock:
                found, missing = self._held(source, months)
                if missing:
                    found.update(await self._load(source, missing[0], missing[-1], load))
        return [found[m] for m in months]

    def _held(self, source: str, months: range) -> tuple[dict[int, Chunk[Row]], list[int]]:
        now = time.monotonic()
        found: dict[int, Chunk[Row]] = {}
        missing: list[int] = []
        for month in months:
            chunk = self._chunks.get((source, month))
            if chunk is None or (self.max_age is not None and now - chunk.loaded_at > self.max_age):
                missing.append(month)
            else:
                self._chunks.move_to_end((source, month))
                found[month] = chunk
        return found, missing

    async def _load(self, source: str, lo: int, hi: int, load: Loader[Row]) -> dict[int, Chunk[Row]]:
        """Read months lo..hi in one store read; keep them unless a write came in meanwhile."""
        generation = self._generation
        start, end = month_span(lo)[0], month_span(hi)[1]
        self.reads += 1
        rows = await load(start, end)
        now = time.monotonic()
        out: dict[int, Chunk[Row]] = {m: Chunk([], [], [], now, 0) for m in range(lo, hi + 1)}
        for day, row, names in rows:
            chunk = out[month_of(day)]
            chunk.days.append(day)
            chunk.rows.append(row)
            chunk.contributors.append(names)
            chunk.raw_size += self._size_of(row) + 64
        if generation == self._generation:
            for month, chunk in out.items():
                self._drop((source, month))
                self._chunks[(source, month)] = chunk
                chunk.kept = True
                self._size += chunk.size
            self._evict()
        return out

    def _evict(self) -> None:
        while self._size > self.budget_bytes and len(self._chunks) > 1:
            _, chunk = self._chunks.popitem(last=False)
            chunk.kept = False
            self._size -= chunk.size
