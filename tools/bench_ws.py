"""WebSocket fan-out: many clients of `WS /ws/rates/stream`, every update, skew, memory, HTTP meanwhile.

    python tools/bench_ws.py [--clients 10000] [--procs 4] [--updates 15] [--servers main,granian]
                             [--no-ceiling] [--json]

Everything runs on 127.0.0.1 (clients bind 127.0.1.x source addresses so ephemeral ports never
run short). Per gateway server it starts a rates service on an empty SQLite file, seeds one
fixing, starts the gateway (`main`: `python -m kurs_gateway` as shipped, the clients on the main
port's ASGI route; `main-native`: the same, the clients on its native stream port,
KURS_GATEWAY_STREAM_PORT; `main*2` / `main-native*2`: with KURS_GATEWAY_WORKERS=2; `uvicorn` /
`granian`: the same app launched here under that server, ASGI route), then:

  1. measures `/rates/latest` alone with wrk (`--wrk-connections`, default 16) and the gateway's
     idle RSS;
  2. connects `--clients` WebSocket clients from `--procs` processes (lean raw-socket clients:
     minimal handshake, frame parser; a few views, `symbols=USD,GBP&base=EUR` for most) and times
     until every one has its snapshot;
  3. publishes `--updates` live USD ticks through RatesIngestService, one per `--interval`
     seconds, with wrk on `/rates/latest` meanwhile; per update: clients that received it, and
     the skew (first client to last client);
  4. closes every client and polls the gateway's RSS until it is back within 20 % of idle (or
     `--settle` seconds pass).

The client's own ceiling is measured in the same run first (unless --no-ceiling): the same client
processes against a trivial server (raw asyncio, prebuilt frames written to every socket), which
is the fastest this client can connect and receive on this machine. Targets (#16): connect
< 10 s, every client receives every update, skew p99 < 250 ms, `/rates/latest` p99 < 20 ms
meanwhile, RSS back within 20 % of idle. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: tools/ is on the path, the repository root is not
    sys.path.insert(0, str(ROOT))

from tools.benchlib import free_port, stop, wait_http  # noqa: E402
from tools.ws_load import CEILING_SERVER, Load, judge  # noqa: E402

CURRENCIES = {"USD": "1.0321", "GBP": "0.82990", "JPY": "162.39", "CHF": "0.9386", "SEK": "11.4883"}
WRK = shutil.which("wrk") or "wrk"


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (granian runs its worker in a child), in MB."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
    return total / 1024


# ---------------------------------------------------------------- the services under test


async def ingest(rates_port: int, rates: dict[str, str], *, live: bool, at: dt.datetime) -> int:
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp

    from kurs.common.v1 import common_pb2
    from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc

    ts = Timestamp()
    ts.FromDatetime(at)
    kind = common_pb2.OBSERVATION_KIND_LIVE if live else common_pb2.OBSERVATION_KIND_REFERENCE
    items = [
        ingest_pb2.AcceptedRate(
            source="replay" if live else "blend",
            kind=kind,
            base="EUR",
            currency=code,
            value=value,
            date=at.date().isoformat(),
            observed_at=ts,
            replay=live,
            sources=[] if live else ["ecb"],
        )
        for code, value in rates.items()
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates_port}") as channel:
        reply = await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
            ingest_pb2.IngestRatesRequest(rates=items)
        )
    return int(reply.sequence)


GATEWAY_APP = """
from kurs_gateway.app import create_app
from kurs_gateway.settings import GatewaySettings
app = create_app(GatewaySettings())
"""


@contextlib.contextmanager
def services(server: str, scratch: Path) -> Any:
    """rates + gateway on free ports; yields (gateway port, gateway pid, rates port, stream port)."""
    rates_port, gw_port, stream_port = free_port(), free_port(), free_port()
    name, _, workers = server.partition("*")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(
        KURS_RATES_ADDRESS=f"127.0.0.1:{rates_port}",
        KURS_RATES_DATABASE_URL=f"sqlite:///{scratch / 'rates.sqlite3'}",
        KURS_RATES_LOG_LEVEL="WARNING",
        KURS_GATEWAY_HOST="127.0.0.1",
        KURS_GATEWAY_PORT=str(gw_port),
        KURS_GATEWAY_STREAM_PORT=str(stream_port),
        KURS_GATEWAY_RATES_ADDRESS=f"127.0.0.1:{rates_port}",
        KURS_GATEWAY_COLLECTOR_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_VALIDATOR_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_DATABASE_URL=f"sqlite:///{scratch / 'gateway.sqlite3'}",
        KURS_GATEWAY_LOG_LEVEL="WARNING",
        KURS_GATEWAY_WORKERS=workers or "1",
        PYTHONPATH=os.pathsep.join([str(scratch), env.get("PYTHONPATH", "")]),
    )
    (scratch / "bench_gateway_app.py").write_text(GATEWAY_APP)
    rates = subprocess.Popen([sys.executable, "-m", "kurs_rates"], env=env, cwd=scratch)
    host = ["--host", "127.0.0.1", "--port", str(gw_port)]
    if name == "granian":
        command = [sys.executable, "-m", "granian", "--interface", "asgi", *host, "--workers", "1",
                   "--loop", "uvloop", "--ws", "--backlog", "4096", "--log-level", "warning",
                   "bench_gateway_app:app"]  # fmt: skip
    elif name == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "bench_gateway_app:app", *host, "--loop", "uvloop",
                   "--http", "httptools", "--ws", "websockets-sansio", "--backlog", "4096",
                   "--no-access-log", "--log-level", "warning"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "kurs_gateway"]
    gateway = None
    try:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(ingest(rates_port, CURRENCIES, live=False, at=now - dt.timedelta(hours=1)))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        gateway = subprocess.Popen(command, env=env, cwd=scratch)  # noqa: S603
        wait_http(f"http://127.0.0.1:{gw_port}/readyz", 60)
        yield gw_port, gateway.pid, rates_port, stream_port
    finally:
        for proc in (gateway, rates):
            if proc is not None:
                stop(proc, 20)


def wrk_start(url: str, seconds: float, connections: int) -> subprocess.Popen[str]:
    command = [WRK, "-t1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency", url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603


def wrk_result(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate(timeout=120)
    units = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

    def ms(label: str) -> float:
        found = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        return round(float(found.group(1)) * units[found.group(2)], 2) if found else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": ms("50"), "p99_ms": ms("99"),
            "non_2xx": int(bad.group(1)) if bad else 0}  # fmt: skip


def run_gateway(server: str, args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="kurs-bench-ws-"))
    try:
        with services(server, scratch) as (port, pid, rates_port, stream_port):
            latest = f"http://127.0.0.1:{port}/rates/latest?base=USD"
            alone = wrk_result(wrk_start(latest, args.wrk_seconds, args.wrk_connections))
            time.sleep(1.0)
            idle = tree_rss_mb(pid)
            native = server.partition("*")[0] == "main-native"
            load = Load(stream_port if native else port, args.clients, args.procs, args.in_flight)
            connected = load.connect()
            peak = tree_rss_mb(pid)
            sent: dict[int, float] = {}
            wrk = wrk_start(latest, args.updates * args.interval + 1, args.wrk_connections)
            time.sleep(0.5)
            start = dt.datetime.now(dt.UTC)
            for i in range(args.updates):
                at = start + dt.timedelta(milliseconds=i)
                published = time.monotonic()
                seq = asyncio.run(ingest(rates_port, {"USD": f"1.{1000 + i}"}, live=True, at=at))
                sent[seq] = published
                time.sleep(max(0.0, published + args.interval - time.monotonic()))
            meanwhile = wrk_result(wrk)
            outcome = load.finish(max(sent))
            after, waited = tree_rss_mb(pid), 0.0
            while after > idle * 1.2 and waited < args.settle:
                time.sleep(0.5)
                waited += 0.5
                after = tree_rss_mb(pid)
            return {
                "server": server,
                "clients": args.clients,
                **connected,
                **judge(sent, outcome, args.clients),
                "latest_alone": alone,
                "latest_meanwhile": meanwhile,
                "rss_idle_mb": round(idle, 1),
                "rss_connected_mb": round(peak, 1),
                "rss_after_mb": round(after, 1),
                "rss_settle_s": waited,
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_ceiling(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", CEILING_SERVER, str(port)])  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        load = Load(port, args.clients, args.procs, args.in_flight)
        connected = load.connect()
        sent: dict[int, float] = {}
        for seq in range(2, 2 + args.updates):
            published = time.monotonic()
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(f"GET /publish?seq={seq} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                s.recv(100)
            sent[seq] = published
            time.sleep(max(0.0, published + min(args.interval, 0.5) - time.monotonic()))
        return {"server": "ceiling (trivial server)", "clients": args.clients, **connected,
                **judge(sent, load.finish(max(sent)), args.clients)}  # fmt: skip
    finally:
        server.kill()
        server.wait()


def show(result: dict[str, Any]) -> None:
    line = (
        f"{result['server']}: {result['connected']}/{result['clients']} connected "
        f"in {result['connect_s']} s; "
        f"every change to every client: {result['every_change_to_every_client']} "
        f"({result['changes_merged']} client-changes merged into a later update); "
        f"every update message to every client: {result['every_update_to_every_client']} "
        f"(min {result['min_clients_per_update']}); skew p50 {result['skew_p50_ms']} ms, "
        f"p99 {result['skew_p99_ms']} ms; publish->last client "
        f"p99 {result['publish_to_last_client_p99_ms']} ms"
    )
    if "latest_alone" in result:
        a, m = result["latest_alone"], result["latest_meanwhile"]
        line += (
            f"\n  /rates/latest alone {a['rps']:.0f} req/s p99 {a['p99_ms']} ms; with the clients "
            f"{m['rps']:.0f} req/s p50 {m['p50_ms']} ms p99 {m['p99_ms']} ms (non-2xx {m['non_2xx']})"
            f"\n  RSS idle {result['rss_idle_mb']} MB, connected {result['rss_connected_mb']} MB, "
            f"after they left {result['rss_after_mb']} MB ({result['rss_settle_s']} s)"
        )
    if result["failures"] or result["close_codes"] or result["resyncs"] or result["dropped_by_server"]:
        line += (
            f"\n  failures {result['failures']} close codes {result['close_codes']} "
            f"resyncs {result['resyncs']} dropped {result['dropped_by_server']}"
        )
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--in-flight", type=int, default=128, help="handshakes in flight per client process")
    parser.add_argument("--updates", type=int, default=15)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between updates")
    parser.add_argument(
        "--servers",
        default="main-native,main",
        help="comma list of main-native, main (*2: 2 workers, e.g. main-native*2), uvicorn, granian",
    )
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--wrk-seconds", type=float, default=5)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait for memory to return")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the gateway inherits it
    if hard < args.clients + 1024:
        print(
            f"bench_ws: RLIMIT_NOFILE hard limit {hard} is too low for {args.clients} clients",
            file=sys.stderr,
        )
    print(f"bench_ws: {args.clients} clients from {args.procs} processes, {os.cpu_count()} cores", flush=True)
    results = [] if args.no_ceiling else [run_ceiling(args)]
    if results:
        show(results[-1])
    for server in args.servers.split(","):
        results.append(run_gateway(server.strip(), args))
        show(results[-1])
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
