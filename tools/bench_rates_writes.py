"""Time the rates service's write path on the real ECB history, as `make run` loads it.

Usage: .venv/bin/python tools/bench_rates_writes.py [--limit N] [--observations-per-batch N]

Builds what the validator forwards for the full ECB history: per collector batch (5,000
observations, newest first), every figure as published (source ecb) and its blended figure
(source blend), in one IngestRates batch of twice that size; writes them through
SqliteRateStore.write into a fresh file and prints

    writes.sqlite.rows N
    writes.sqlite.seconds S            wall time of the writes alone (nothing else runs)
    writes.sqlite.cpu_seconds S        CPU time of the process (both threads) meanwhile
    writes.sqlite.rows_per_s N

Run it against two checkouts in the same session to compare (PYTHONPATH of the other one's
lib/, services/rates/, gen/python).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from kurs_collector.feeds.ecb_history import default_history_path, parse_history_csv, read_history_zip
from kurs_rates import model
from kurs_rates.sqlite_store import SqliteRateStore


def batches(limit: int, per_batch: int) -> list[list[model.Rate]]:
    observations = list(parse_history_csv(read_history_zip(default_history_path())))
    if limit:
        observations = observations[:limit]
    out = []
    for start in range(0, len(observations), per_batch):
        published = []
        for o in observations[start : start + per_batch]:
            assert o.observed_at is not None
            published.append(
                model.Rate(
                    "ecb",
                    model.RateKind.REFERENCE,
                    o.quote,
                    o.value,
                    dt.date.fromisoformat(o.day),
                    o.observed_at,
                    ("ecb",),
                    base=o.base,
                )
            )
        out.append(published + [dataclasses.replace(r, source=model.BLEND) for r in published])
    return out


async def run(limit: int, per_batch: int) -> None:
    work = batches(limit, per_batch)
    rows = sum(len(b) for b in work)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteRateStore(Path(tmp) / "bench.sqlite3")
        await store.open()
        try:
            start, cpu = time.perf_counter(), time.process_time()
            for batch in work:
                await store.write(batch)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            await store.close()
    print(f"writes.sqlite.rows {rows}")
    print(f"writes.sqlite.seconds {seconds:.2f}")
    print(f"writes.sqlite.cpu_seconds {cpu:.2f}")
    print(f"writes.sqlite.rows_per_s {rows / seconds:.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N observations (0: all)")
    parser.add_argument("--observations-per-batch", type=int, default=5_000)
    args = parser.parse_args()
    asyncio.run(run(args.limit, args.observations_per_batch))
    sys.exit(0)


if __name__ == "__main__":
    main()
