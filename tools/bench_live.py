"""Live path latency: a market tick arriving at the collector -> a gateway WebSocket client.

    python tools/bench_live.py [--ticks 300] [--interval-ms 25] [--with-history] [--json]

Starts, all on 127.0.0.1 and nothing beyond it:
  * a fake exchange speaking Kraken's WebSocket v2 ticker protocol (tests/support/fake_exchanges.py);
  * the whole mesh (`python -m kurs_common.mesh`: rates, validator, collector, gateway) on free
    ports and a scratch data dir, with live collection switched on for exactly one source,
    `kraken-ws`, whose ws_url points at the fake exchange (KURS_COLLECTOR_SOURCES_FILE);
  * a client of the gateway's `WS /ws/rates/stream?symbols=USD&base=EUR`.

Then it sends EUR/USD ticks one at a time, each with a new bid/ask, and times from the moment
the tick frame is written to the exchange socket until the client receives the `update`
carrying that tick's mid price. Prints count, lost, p50, p90, p99 and max in milliseconds and
whether p99 meets the target (< 100 ms). Exit code 0 when every tick arrived and the target is
met, 1 otherwise, 2 when the mesh could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from kurs_common.money import format_decimal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake exchange is a test double under tests/support
from support.fake_exchanges import FakeWsServer  # noqa: E402

TARGET_P99_MS = 100.0
START_PRICE = Decimal("1.03000")
STEP = Decimal("0.00001")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tick(bid: Decimal, ask: Decimal, kind: str = "update") -> str:
    """A Kraken v2 ticker frame; prices are JSON numbers written with exactly these digits."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":"EUR/USD",'
        f'"bid":{bid:f},"bid_qty":1000.0,"ask":{ask:f},"ask_qty":1000.0,"last":{bid:f},'
        f'"timestamp":"{stamp}"}}]}}'
    )


def expected_mid(bid: Decimal, ask: Decimal) -> str:
    return format_decimal((bid + ask) / 2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def sources_file(directory: Path, ws_url: str) -> Path:
    path = directory / "sources.toml"
    path.write_text(
        "live = true\n"
        "[sources.kraken-ws]\n"
        "enabled = true\n"
        'base_url = "http://127.0.0.1:9"\n'
        f'ws_url = "{ws_url}"\n'
        'pairs = ["EUR/USD"]\n'
        "stale_seconds = 3600\n"
        "reconnect_seconds = 0.2\n"
    )
    return path


async def wait_ready(gateway: str, mesh: subprocess.Popen[bytes], limit: float) -> bool:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(trust_env=False) as client:
        while time.monotonic() < deadline:
            if mesh.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{gateway}/readyz", timeout=1)).status_code == 200:
                    return True
            await asyncio.sleep(0.25)
    return False


async def open_stream(gateway_ws: str, limit: float) -> tuple[Any, dict[str, Any]]:
    """Connect once EUR/USD is served (the first tick has gone through); return the snapshot."""
    deadline = time.monotonic() + limit
    last_error = ""
    while time.monotonic() < deadline:
        try:
            ws = await connect(f"{gateway_ws}/ws/rates/stream?symbols=USD&base=EUR", open_timeout=5)
        except OSError as exc:
            last_error = str(exc)
            await asyncio.sleep(0.25)
            continue
        first = json.loads(await ws.recv())
        if first.get("type") == "snapshot" and "USD" in first.get("rates", {}):
            return ws, first
        last_error = json.dumps(first)[:200]
        await ws.close()
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the gateway stream never served EUR/USD: {last_error}")


async def measure(
    ws: Any, exchange: FakeWsServer, ticks: int, interval: float, wait: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    lost = 0
    for i in range(1, ticks + 1):
        bid = START_PRICE + STEP * (2 * i)
        ask = bid + STEP
        want = expected_mid(bid, ask)
        frame = tick(bid, ask)
        started = time.perf_counter()
        await exchange.broadcast(frame)
        try:
            async with asyncio.timeout(wait):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("type") == "update" and message.get("rates", {}).get("USD") == want:
                        latencies.append((time.perf_counter() - started) * 1000)
                        break
        except TimeoutError:
            lost += 1
        await asyncio.sleep(interval)
    return latencies, lost


def start_mesh(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)  # noqa: S603


async def run(args: argparse.Namespace) -> int:
    first_bid = START_PRICE
    snapshot_frame = tick(first_bid, first_bid + STEP, "snapshot")
    exchange = FakeWsServer([[("recv",), ("send", snapshot_frame), ("hold",)]])
    await exchange.start()
    scratch = Path(tempfile.mkdtemp(prefix="kurs-bench-live-"))
    ports = {name: free_port() for name in ("gateway", "rates", "validator", "collector")}
    env = {
        **os.environ,
        "KURS_COLLECTOR_SOURCES_FILE": str(sources_file(scratch, exchange.url)),
        "KURS_COLLECTOR_LIVE": "true",
        "KURS_COLLECTOR_ECB_HISTORY_ENABLED": "true" if args.with_history else "false",
        "KURS_COLLECTOR_LOG_LEVEL": "WARNING",
        "KURS_VALIDATOR_LOG_LEVEL": "WARNING",
        "KURS_RATES_LOG_LEVEL": "WARNING",
        "KURS_GATEWAY_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "kurs_common.mesh",
        "--data-dir",
        str(scratch / "data"),
        *[arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))],
    ]
    mesh = start_mesh(command, env)
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    try:
        if not await wait_ready(gateway, mesh, args.ready_timeout):
            print(f"bench_live: the mesh did not become ready on {gateway}", file=sys.stderr)
            return 2
        ws, snapshot = await open_stream(gateway.replace("http://", "ws://"), args.ready_timeout)
        try:
            latencies, lost = await measure(ws, exchange, args.ticks, args.interval_ms / 1000, args.wait)
        finally:
            await ws.close()
    finally:
        mesh.send_signal(signal.SIGTERM)
        try:
            mesh.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(mesh.pid, signal.SIGKILL)
            mesh.wait()
        await exchange.close()
    result: dict[str, Any] = {"ticks": args.ticks, "received": len(latencies), "lost": lost}
    if latencies:
        result |= {
            "p50_ms": round(statistics.median(latencies), 2),
            "p90_ms": round(percentile(latencies, 90), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "max_ms": round(max(latencies), 2),
        }
    result["target_p99_ms"] = TARGET_P99_MS
    result["meets_target"] = bool(latencies) and lost == 0 and result["p99_ms"] < TARGET_P99_MS
    result["snapshot_sequence"] = snapshot.get("sequence")
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"live path tick -> gateway WS: {result['received']}/{args.ticks} received, {lost} lost; "
            + (
                f"p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, "
                f"max {result['max_ms']} ms; "
                if latencies
                else ""
            )
            + f"target p99 < {TARGET_P99_MS:g} ms: {'met' if result['meets_target'] else 'NOT met'}"
        )
    return 0 if result["meets_target"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=25.0, help="pause after each tick arrived")
    parser.add_argument("--wait", type=float, default=2.0, help="seconds before a tick counts as lost")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--with-history", action="store_true", help="also load the offline ECB history")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
