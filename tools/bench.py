"""`make bench`: start the mesh on the embedded store and measure it; prints every figure.

HTTP endpoints are loaded with wrk (64 connections, 2 threads) on the same machine; a bare ASGI
app that returns a prebuilt body of the same size is measured in the same run on uvicorn (the
gateway's own server settings) and on granian (the Python ceiling the gateway is compared with).
gRPC GetLatestRates is loaded by an asyncio client
in a separate process. Component benchmarks written for the stores, the validator and the
live path are run afterwards when present (tools/bench_*.py).

Rates change every second while it measures (issue #16): the mesh runs the collector's replay
feed (`KURS_COLLECTOR_REPLAY_ENABLED`), a full set of ticks through collector -> validator ->
rates -> the gateway's stream once a second; each HTTP figure says how many changes the gateway's
snapshot saw during its run (`--static`: history only, as before). The gateway's server is chosen
by measurement: `--compare-servers` (on by default, first backend only) starts extra gateways on
the same mesh (uvicorn; granian with 2 workers, beside a 2-worker ceiling) and measures
/rates/latest on each. `--rounds` sets how many alternating rounds the gateway's latest figure
takes (21; the other servers' at most 7): one round varies about ±15 % on a shared host, so the
median's 95 % interval (bootstrap over the rounds) is printed beside it.

Targets (2 cores): /rates/latest >= 0.9x the granian ceiling and p99 < 5 ms while rates change,
every cached GET p99 < 10 ms (each in rounds alternating with the ceiling serving as many bytes:
the ceiling's own p99 beside it shows what the machine allowed); one-year time series
(distinct ranges, gateway-uncached) p50 < 5 ms. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: tools/ is on the path, the repository root is not
    sys.path.insert(0, str(ROOT))

from tools.benchlib import (  # noqa: E402
    CONNECTIONS,
    THREADS,
    alternate,
    baseline_server,
    free_port,
    median,
    median_interval,
    medians,
    mesh,
    p99_pairs,
    postgres_and_redis,
    report,
    round_seconds,
    stop,
    wait_http,
    wrk,
)


def _grpc_worker(target: str, seconds: float, concurrency: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import grpc

    from kurs.rates.v1 import rates_pb2, rates_pb2_grpc

    async def run() -> list[float]:
        latencies: list[float] = []
        async with grpc.aio.insecure_channel(target) as channel:
            stub = rates_pb2_grpc.RatesServiceStub(channel)
            request = rates_pb2.GetLatestRatesRequest(base="USD")
            await stub.GetLatestRates(request)
            deadline = time.monotonic() + seconds

            async def loop() -> None:
                while time.monotonic() < deadline:
                    t0 = time.perf_counter()
                    await stub.GetLatestRates(request)
                    latencies.append((time.perf_counter() - t0) * 1000)

            await asyncio.gather(*(loop() for _ in range(concurrency)))
        return latencies

    queue.put(asyncio.run(run()))


def grpc_load(target: str, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=_grpc_worker, args=(target, seconds, CONNECTIONS, queue))
    proc.start()
    latencies = sorted(queue.get(timeout=seconds + 60))
    proc.join()
    n = len(latencies)
    return {"rps": n / seconds, "p50_ms": latencies[n // 2], "p99_ms": latencies[min(n - 1, int(n * 0.99))]}


def size_of(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - loopback
        return len(reply.read())


def _summary(latencies: list[float]) -> dict[str, float]:
    latencies = sorted(latencies)
    count = len(latencies)
    return {
        "rps": count / (sum(latencies) / 1000),
        "p50_ms": latencies[count // 2],
        "p99_ms": latencies[min(count - 1, int(count * 0.99))],
    }


def cold_latencies(
    gateway: str, count: int = 40, first: dt.date = dt.date(2023, 1, 2), step: int = 1
) -> dict[str, float]:
    """One-year all-currency time series, each range different so no cached body answers it.

    With step=1 the ranges share their months (the rates service's columnar cache holds them
    after the first call, whose latency is reported as `first_ms`); with step=400 every call
    also reads its months from the store.
    """
    latencies = []
    failed = 0
    for i in range(count):
        start = first + dt.timedelta(days=i * step)
        end = start + dt.timedelta(days=364)
        url = f"{gateway}/rates/timeseries?start_date={start}&end_date={end}&base=USD"
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - loopback
                reply.read()
        except urllib.error.HTTPError as exc:  # counted as a failure, its time still counted
            print(f"  {url}: HTTP {exc.code}", flush=True)
            failed += 1
        latencies.append((time.perf_counter() - t0) * 1000)
    return {**_summary(latencies), "first_ms": latencies[0], "non_2xx": failed}


def typed_series_latencies(
    target: str, count: int = 40, first: dt.date = dt.date(2021, 1, 4)
) -> dict[str, float]:
    """The path /rates/timeseries took before GetTimeSeriesJson, measured in the same run: the
    typed GetTimeSeries RPC (uncached in the rates service), decoded and encoded to the same
    JSON body as the gateway did (views.timeseries_body + orjson), distinct ranges, c=1."""
    import grpc
    import orjson

    from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
    from kurs_gateway import views

    latencies = []
    with grpc.insecure_channel(target) as channel:
        stub = rates_pb2_grpc.RatesServiceStub(channel)
        for i in range(count):
            start = first + dt.timedelta(days=i)
            end = start + dt.timedelta(days=364)
            request = rates_pb2.GetTimeSeriesRequest(start_date=str(start), end_date=str(end), base="USD")
            t0 = time.perf_counter()
            orjson.dumps(views.timeseries_body(stub.GetTimeSeries(request, timeout=30)))
            latencies.append((time.perf_counter() - t0) * 1000)
    return _summary(latencies)


def sequence_of(gateway: str) -> int:
    """The live snapshot's sequence as the gateway serves it (counts the changes during a run)."""
    with urllib.request.urlopen(f"{gateway}/rates/latest?base=USD", timeout=30) as reply:  # noqa: S310
        return int(orjson.loads(reply.read())["sequence"])


ROUNDS = 21  # alternating rounds of /rates/latest and its ceiling (--rounds): a round varies ±15 %
SERVER_ROUNDS = 7  # the same for the other servers compared (how the server was chosen)
CACHED_ROUNDS = 3  # alternating rounds of each cached GET and a ceiling serving as many bytes


def latest_under_updates(
    name: str, gateway: str, seconds: int, ceiling: str, rounds: int = ROUNDS
) -> dict[str, float]:
    """/rates/latest at c=64 while the replay feed changes the rates, against the granian ceiling
    (a bare app serving a body of the same size, on as many workers as the gateway), in
    alternating rounds; the verdict uses the median round's ratio, printed with the 95 % interval
    of that median (bootstrap over the rounds: how much the host's noise leaves it uncertain)."""
    part = round_seconds(seconds)
    before = sequence_of(gateway)
    ours, bare = alternate(f"{gateway}/rates/latest?base=USD", ceiling, rounds, part)
    changes = sequence_of(gateway) - before
    ratios = [o["rps"] / b["rps"] for o, b in zip(ours, bare, strict=True)]
    ratio = median(ratios)
    low, high = median_interval(ratios)
    figures = medians(ours)
    ceiling_figures = medians(bare)
    report(f"{name} ({changes} rate changes in {rounds}x{part}s)", figures)
    report(f"  the ceiling, alternating with it ({rounds}x{part}s)", ceiling_figures)
    per_round = ", ".join(f"{o['rps'] / b['rps']:.2f}x" for o, b in zip(ours, bare, strict=True))
    p99s = p99_pairs(ours, bare)
    verdict = "meets" if ratio >= 0.9 and figures["p99_ms"] < 5 else "MISSES"
    target = "target >= 0.9x, p99 < 5 ms"
    print(
        f"  ratio to the granian ceiling: {ratio:.2f}x, 95% interval {low:.2f}-{high:.2f}x "
        f"(rounds {per_round}; {target}): {verdict}",
        flush=True,
    )
    print(f"  p99 per round, ours/ceiling (ms): {p99s}", flush=True)
    if ceiling_figures["p99_ms"] >= 5:
        print(
            "  (the ceiling's own p99 is over 5 ms here: judge p99 beside it, not against 5 ms)", flush=True
        )
    return {**figures, "changes": float(changes), "ratio": ratio}


CACHED_GETS = (
    ("/rates/historical?date=2025-01-15&base=USD", "historical"),
    ("/rates/timeseries?start_date=2025-06-01&end_date=2025-06-30&base=USD", "timeseries, one month"),
    ("/rates/convert?from=USD&to=EUR&amount=100", "convert (latest)"),
    ("/rates/convert?from=USD&to=EUR&amount=100&date=2025-01-15", "convert (a past date)"),
    ("/currencies", "currencies"),
    ("/frankfurter/latest", "frankfurter latest"),
    ("/frankfurter/2025-01-15", "frankfurter one day"),
    ("/frankfurter/2025-01-01..2025-01-31", "frankfurter one month"),
    ("/openexchangerates/api/latest.json", "openexchangerates latest"),
    ("/openexchangerates/api/historical/2025-01-15.json", "openexchangerates one day"),
    ("/openexchangerates/api/currencies.json", "openexchangerates currencies"),
)


def cached_suite(label: str, gateway: str, seconds: int, ceiling: str, rounds: int = ROUNDS) -> None:
    """Latest against the ceiling, then every cached GET (each asked once first, so its body is
    built; the live ones are rebuilt on every change meanwhile) in rounds alternating with the
    ceiling serving a body of the same size: target p99 < 10 ms (the median round)."""
    latest_under_updates(
        f"[{label}] GET /rates/latest?base=USD (all currencies)", gateway, seconds, ceiling, rounds
    )
    part = round_seconds(seconds)
    worst = worst_ceiling = worst_round = 0.0
    for path, name in CACHED_GETS:
        size = size_of(f"{gateway}{path}")
        ours, bare = alternate(f"{gateway}{path}", f"{ceiling}?size={size}", CACHED_ROUNDS, part)
        figures, ceiling_figures = medians(ours), medians(bare)
        report(f"[{label}] GET {name} (cached body, {size} B)", figures)
        p99s = p99_pairs(ours, bare)
        ratio = figures["rps"] / ceiling_figures["rps"]
        print(
            f"  the ceiling, same size: {ceiling_figures['rps']:.0f} req/s ({ratio:.2f}x); "
            f"p99 per round, ours/ceiling (ms): {p99s}",
            flush=True,
        )
        worst = max(worst, figures["p99_ms"])
        worst_ceiling = max(worst_ceiling, ceiling_figures["p99_ms"])
        worst_round = max(worst_round, *(o["p99_ms"] for o in ours))
    verdict = "meets" if worst < 10 else "MISSES"
    print(
        f"  worst cached GET p99 {worst:.2f} ms, median rounds (target < 10 ms): {verdict}; "
        f"worst single round {worst_round:.2f} ms; the ceiling's worst {worst_ceiling:.2f} ms",
        flush=True,
    )


SERVERS = (("uvicorn", 1), ("granian", 2))


def compare_servers(
    ports: dict[str, int], seconds: int, ceiling: str, data_dir: Path, body: int, rounds: int = ROUNDS
) -> None:
    """The gateway on other servers against the same mesh (its own stream, cache and metrics per
    process), each measured like the mesh's own gateway: how the server was chosen. Several
    granian workers are compared with a ceiling on as many workers too."""
    for server, workers in SERVERS:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
        env.update(
            KURS_GATEWAY_SERVER=server,
            KURS_GATEWAY_WORKERS=str(workers),
            KURS_GATEWAY_PORT=str(port),
            KURS_GATEWAY_STREAM_PORT="",  # the native stream port stays off
            KURS_GATEWAY_LOG_LEVEL="WARNING",
            KURS_GATEWAY_RATES_ADDRESS=f"127.0.0.1:{ports['rates']}",
            KURS_GATEWAY_COLLECTOR_ADDRESS=f"127.0.0.1:{ports['collector']}",
            KURS_GATEWAY_VALIDATOR_ADDRESS=f"127.0.0.1:{ports['validator']}",
            KURS_GATEWAY_DATABASE_URL=f"sqlite:///{data_dir / f'gateway-{server}-{workers}.sqlite3'}",
        )
        proc = subprocess.Popen([sys.executable, "-m", "kurs_gateway"], env=env, start_new_session=True)
        try:
            gw = f"http://127.0.0.1:{port}"
            wait_http(f"{gw}/readyz")
            size_of(f"{gw}/rates/latest?base=USD")
            name = f"server: {server}, {workers} worker(s): GET /rates/latest"
            if workers == 1:
                latest_under_updates(name, gw, seconds, ceiling, min(rounds, SERVER_ROUNDS))
                continue
            with baseline_server(body, "granian", workers) as wide:
                latest_under_updates(name, gw, seconds, wide, min(rounds, SERVER_ROUNDS))
                print(f"  (the ceiling here: bare ASGI on granian, {workers} workers)", flush=True)
        finally:
            stop(proc)


def http_suite(
    label: str,
    ports: dict[str, int],
    seconds: int,
    baseline: dict[str, float] | None,
    compare_in: Path | None = None,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    gw = f"http://127.0.0.1:{ports['gateway']}"
    latest = f"{gw}/rates/latest?base=USD"
    historical = f"{gw}/rates/historical?date=2025-01-15&base=USD"
    series = f"{gw}/rates/timeseries?start_date=2025-01-01&end_date=2025-12-31&base=USD"
    body = size_of(latest)
    print(
        f"[{label}] /rates/latest body: {body} B; one-year time series body: {size_of(series)} B", flush=True
    )
    with baseline_server(body, "granian") as ceiling:  # kept up: latest alternates with it
        if baseline is None:
            with baseline_server(body) as bare:
                report(f"baseline: bare ASGI on uvicorn, prebuilt {body} B body", wrk(bare, seconds))
            baseline = wrk(ceiling, seconds)
            report(f"ceiling: bare ASGI on granian, prebuilt {body} B body", baseline)
        cached_suite(label, gw, seconds, ceiling, rounds)
        if compare_in is not None:
            compare_servers(ports, seconds, ceiling, compare_in, body, rounds)
    report(f"[{label}] GET /rates/historical (cached body)", wrk(historical, seconds))
    report(f"[{label}] GET /rates/timeseries 1y all (cached, c=64)", wrk(series, seconds))
    cold = cold_latencies(gw)
    report(f"[{label}] GET /rates/timeseries 1y all (uncached body, distinct ranges, c=1)", cold)
    verdict = "meets" if cold["p50_ms"] < 5 else "MISSES"
    print(f"  first call (months read from the store) {cold['first_ms']:.1f} ms", flush=True)
    print(f"  uncached p50 {cold['p50_ms']:.1f} ms (target < 5 ms, #16; < 50 ms, #8): {verdict}", flush=True)
    missed = cold_latencies(gw, count=12, first=dt.date(2000, 3, 1), step=400)
    report(f"[{label}] the same, every range in months not cached yet (c=1)", missed)
    typed = typed_series_latencies(f"127.0.0.1:{ports['rates']}")
    report(f"[{label}] before: gRPC GetTimeSeries (uncached) + the gateway's JSON encode (c=1)", typed)
    # The floor of any HTTP answer of that size here: one range asked again (a cached body), c=1.
    floor = cold_latencies(gw, count=40, first=dt.date(2023, 1, 2), step=0)
    report(f"[{label}] ceiling: the same body from the gateway's cache (c=1)", floor)
    report(f"[{label}] gRPC GetLatestRates (64 in flight)", grpc_load(f"127.0.0.1:{ports['rates']}", seconds))
    return baseline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run")
    parser.add_argument("--skip-components", action="store_true", help="only the HTTP/gRPC figures")
    parser.add_argument("--static", action="store_true", help="no replay feed: the rates do not change")
    parser.add_argument(
        "--no-compare-servers",
        action="store_true",
        help="skip the gateway on uvicorn and on 2 granian workers",
    )
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma list: sqlite (embedded), postgres (with Redis)"
    )
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help="alternating rounds of /rates/latest and its ceiling"
    )
    ns = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run `bash tools/ensure_wrk.sh` (Debian package wrk)")
    print(f"kurs bench: {os.cpu_count()} cores, wrk -t{THREADS} -c{CONNECTIONS} -d{ns.seconds}s", flush=True)
    baseline = None
    for backend in ns.backends.split(","):
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kurs-bench-")))
            env = stack.enter_context(postgres_and_redis()) if backend == "postgres" else {}
            label = "postgres+redis" if backend == "postgres" else "embedded sqlite"
            print(f"--- mesh on {label}", flush=True)
            ports = stack.enter_context(mesh(tmp / "var", env, live=not ns.static))
            compare = baseline is None and not ns.no_compare_servers  # first backend only
            baseline = http_suite(
                label, ports, ns.seconds, baseline, tmp if compare else None, max(1, ns.rounds)
            )
    if not ns.skip_components:
        scripts = (
            "bench_store.py",
            "bench_validator.py",
            "bench_live.py",
            "bench_ws.py",
            "bench_sdk.py",
            "bench_keys.py",
            "bench_analysis.py",
        )
        for script in scripts:
            path = ROOT / "tools" / script
            if path.exists():
                print(f"--- tools/{script}", flush=True)
                subprocess.run([sys.executable, str(path)], check=False)  # noqa: S603
    return 0


if __name__ == "__main__":
    sys.exit(main())
