"""Measure the validator on the real ECB history (221,702 observations, batches of 5,000).

Usage: python tools/bench_validator.py [--batch N] [--limit N]

Runs the whole servicer path in one process on one core: protobuf request -> observations ->
validation engine -> SQLite (anomalies + quality records, a temporary file) -> IngestRates requests
built for a stand-in rates service that acknowledges at once (no network). Prints:

    validator.observations_per_s N            the whole path, per CPU-second of this process
    validator.batch_latency_ms p50=.. p99=..  time the validator adds to one SubmitObservations call
    validator.engine_observations_per_s N     the validation engine alone (rules + consensus)
    validator.wall_observations_per_s N       the whole path, per wall-clock second

The garbage collector is tuned as in the validator's entrypoint (`server.tune_gc`).
Rates are per CPU-second (all threads of the process: the SQLite writes run in a worker thread)
so that other load on a shared machine does not distort them; the wall-clock rate is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

from kurs.rates.v1 import ingest_pb2
from kurs.validator.v1 import validator_pb2
from kurs_collector.feeds.ecb_history import default_history_path, parse_history_csv, read_history_zip
from kurs_common.observation import Observation
from kurs_common.timeutil import utcnow
from kurs_validator import server
from kurs_validator.engine import ValidationEngine
from kurs_validator.hub import AnomalyHub
from kurs_validator.servicer import ValidatorServicer
from kurs_validator.store import ValidatorStore


class _Rates:
    """Stands in for RatesIngestServiceStub: acknowledges every rate as inserted."""

    def __init__(self) -> None:
        self.rates = 0

    async def IngestRates(self, request: ingest_pb2.IngestRatesRequest, **_: Any) -> Any:
        self.rates += len(request.rates)
        return ingest_pb2.IngestRatesResponse(inserted=len(request.rates))


class _Context:
    async def abort(self, code: Any, details: str) -> NoReturn:
        raise RuntimeError(f"{code}: {details}")


def _load(limit: int | None) -> list[Observation]:
    observations = list(parse_history_csv(read_history_zip(default_history_path())))
    observations.reverse()  # oldest first, as the collector sends them
    return observations[:limit] if limit else observations


def bench_engine(observations: list[Observation], batch: int) -> float:
    engine = ValidationEngine()
    now = utcnow()
    started = time.process_time()
    for start in range(0, len(observations), batch):
        engine.process(observations[start : start + batch], now)
    return len(observations) / (time.process_time() - started)


async def bench_servicer(
    observations: list[Observation], batch: int
) -> tuple[float, float, list[float], int]:
    requests = [
        validator_pb2.SubmitObservationsRequest(
            observations=[o.to_proto() for o in observations[i : i + batch]]
        )
        for i in range(0, len(observations), batch)
    ]
    with tempfile.TemporaryDirectory() as folder:
        store = ValidatorStore(f"sqlite:///{Path(folder) / 'validator.sqlite3'}")
        store.open()
        rates = _Rates()
        servicer = ValidatorServicer(
            rates,  # type: ignore[arg-type]
            ValidationEngine(),
            store,
            AnomalyHub(),
            forward_batch=10_000,
            timeout=60.0,
        )
        latencies: list[float] = []
        started = time.perf_counter()
        cpu = time.process_time()
        for request in requests:
            t0 = time.perf_counter()
            reply = await servicer.SubmitObservations(request, _Context())
            latencies.append((time.perf_counter() - t0) * 1000)
            if reply.rejections:
                print(f"unexpected rejections: {reply.rejections[:3]}", file=sys.stderr)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        store.close()
    return len(observations) / cpu, len(observations) / elapsed, latencies, rates.rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--limit", type=int, default=0, help="only the first N observations (0: all)")
    args = parser.parse_args()
    server.tune_gc()  # as the validator's entrypoint does, before anything is loaded
    observations = _load(args.limit or None)
    rate, wall, latencies, forwarded = asyncio.run(bench_servicer(observations, args.batch))
    engine_rate = bench_engine(observations, args.batch)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    print(f"validator.observations {len(observations)} forwarded={forwarded} batch={args.batch}")
    print(f"validator.observations_per_s {rate:.0f}")
    print(f"validator.batch_latency_ms p50={q[49]:.1f} p99={q[98]:.1f}")
    print(f"validator.engine_observations_per_s {engine_rate:.0f}")
    print(f"validator.wall_observations_per_s {wall:.0f}")


if __name__ == "__main__":
    main()
