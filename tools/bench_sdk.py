"""The Python SDK's costs: a cached latest() and an uncached gRPC round trip.

    python tools/bench_sdk.py [--calls 200000] [--round-trips 3000]

Starts one rates service (`python -m kurs_rates`) on a free loopback port with a scratch SQLite
file, publishes one fixing of 32 currencies into it, then measures, all in this process:
  * KursClient (blocking) and AsyncKursClient latest("USD") answered from the SDK's TTL cache
    (mean cost per call, in microseconds);
  * uncached latest("USD") over gRPC (cache_seconds=0), one call at a time: p50, p99, mean;
    for the blocking client (handed to its loop thread) and the asyncio client;
  * the bare generated stub's GetLatestRates on the same channel settings, for the SDK's overhead.
Figures are printed, never asserted. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_client import AsyncKursClient, ClientConfig, Endpoint, KursClient

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: tools/ is on the path, the repository root is not
    sys.path.insert(0, str(ROOT))

from tools.benchlib import free_port, stop  # noqa: E402

FIXING = {
    "USD": "1.1672", "JPY": "178.55", "BGN": "1.9558", "CZK": "24.315", "DKK": "7.4612", "GBP": "0.8838",
    "HUF": "389.40", "PLN": "4.2450", "RON": "5.0790", "SEK": "10.9850", "CHF": "0.9302", "ISK": "146.30",
    "NOK": "11.7210", "TRY": "48.915", "AUD": "1.7790", "BRL": "6.2810", "CAD": "1.6320", "CNY": "8.3120",
    "HKD": "9.0720", "IDR": "19380.50", "ILS": "3.8120", "INR": "102.45", "KRW": "1665.30", "MXN": "21.530",
    "MYR": "4.9310", "NZD": "2.0310", "PHP": "68.120", "SGD": "1.5110", "THB": "37.850", "ZAR": "20.115",
    "EUR": "1",
}  # fmt: skip


@contextlib.contextmanager
def rates_service(folder: Path) -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(
        KURS_RATES_ADDRESS=address,
        KURS_RATES_DATABASE_URL=f"sqlite:///{folder / 'rates.sqlite3'}",
        KURS_RATES_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen([sys.executable, "-m", "kurs_rates"], env=env)
    try:
        yield address
    finally:
        stop(proc)


async def seed(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit(f"rates service at {address} did not start")
        stamp = Timestamp()
        stamp.FromDatetime(dt.datetime(2026, 10, 30, 15, tzinfo=dt.UTC))
        rates = [
            ingest_pb2.AcceptedRate(
                source="blend", kind=common_pb2.OBSERVATION_KIND_REFERENCE, base="EUR", currency=code,
                value=value,
                date="2026-10-30", observed_at=stamp, sources=["ecb"],
            )
            for code, value in FIXING.items()
            if code != "EUR"
        ]  # fmt: skip
        await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
            ingest_pb2.IngestRatesRequest(rates=rates), timeout=30
        )


def report(name: str, latencies_us: list[float]) -> None:
    ordered = sorted(latencies_us)
    n = len(ordered)
    print(
        f"{name:<52} p50 {ordered[n // 2]:>8.1f} us   p99 {ordered[min(n - 1, int(n * 0.99))]:>8.1f} us   "
        f"mean {statistics.fmean(ordered):>8.1f} us   ({n} calls)",
        flush=True,
    )


def per_call(name: str, seconds: float, calls: int) -> None:
    print(
        f"{name:<52} {seconds / calls * 1e6:>8.2f} us per call   ({calls / seconds:>10.0f} calls/s)",
        flush=True,
    )


async def async_figures(address: str, calls: int, round_trips: int) -> None:
    config = ClientConfig((Endpoint(address),))
    async with AsyncKursClient(config) as client:
        await client.latest("USD")
        started = time.perf_counter()
        for _ in range(calls):
            await client.latest("USD")
        per_call("SDK async latest(), cached", time.perf_counter() - started, calls)

    async with AsyncKursClient(ClientConfig((Endpoint(address),), cache_seconds=0)) as client:
        latencies = []
        for _ in range(100):
            await client.latest("USD")
        for _ in range(round_trips):
            t0 = time.perf_counter()
            await client.latest("USD")
            latencies.append((time.perf_counter() - t0) * 1e6)
        report("SDK async latest(), uncached gRPC round trip", latencies)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = rates_pb2_grpc.RatesServiceStub(channel)
        request = rates_pb2.GetLatestRatesRequest(base="USD")
        latencies = []
        for _ in range(100):
            await stub.GetLatestRates(request, timeout=5)
        for _ in range(round_trips):
            t0 = time.perf_counter()
            await stub.GetLatestRates(request, timeout=5)
            latencies.append((time.perf_counter() - t0) * 1e6)
        report("bare grpc.aio stub GetLatestRates (reference)", latencies)


def sync_figures(address: str, calls: int, round_trips: int) -> None:
    with KursClient(ClientConfig((Endpoint(address),))) as client:
        client.latest("USD")
        started = time.perf_counter()
        for _ in range(calls):
            client.latest("USD")
        per_call("SDK blocking latest(), cached", time.perf_counter() - started, calls)
    with KursClient(ClientConfig((Endpoint(address),), cache_seconds=0)) as client:
        for _ in range(100):
            client.latest("USD")
        latencies = []
        for _ in range(round_trips):
            t0 = time.perf_counter()
            client.latest("USD")
            latencies.append((time.perf_counter() - t0) * 1e6)
        report("SDK blocking latest(), uncached gRPC round trip", latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="cached calls per client")
    parser.add_argument("--round-trips", type=int, default=3_000, help="uncached calls per client")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kurs-bench-sdk-") as tmp, rates_service(Path(tmp)) as address:
        asyncio.run(seed(address))
        print(f"kurs-client bench: one rates service at {address}, {len(FIXING) - 1} currencies", flush=True)
        sync_figures(address, ns.calls, ns.round_trips)
        asyncio.run(async_figures(address, ns.calls, ns.round_trips))
    return 0


if __name__ == "__main__":
    sys.exit(main())
