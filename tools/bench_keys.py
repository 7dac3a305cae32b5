"""Managed API keys on the hot path: /rates/latest with keys and limits on vs. off (issue #18).

Starts the mesh twice on the embedded store (tools/bench.py's runner): once as `make run` does
(keys off), once with KURS_GATEWAY_AUTH=keys, a managed key carrying a rate limit and a daily
quota, and (when reachable) Redis sharing the limits under a scratch key prefix. Both runs are
loaded with wrk (64 connections, 2 threads) on /rates/latest?base=USD; the keyed run sends the
key in X-API-Key. Target: keyed >= 0.75x unkeyed. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _bench() -> Any:
    """tools/bench.py: the mesh runner and the wrk helpers (a script beside this one)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    return importlib.import_module("bench")


bench = _bench()

REDIS_URL = os.environ.get("KURS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
READY_KEY = "bench-readiness-only"  # a static key for the mesh runner's readiness poll


def wrk(url: str, seconds: int, key: str | None) -> dict[str, float]:
    args = [
        bench.WRK,
        "-t",
        str(bench.THREADS),
        "-c",
        str(bench.CONNECTIONS),
        "-d",
        f"{seconds}s",
        "--latency",
    ]
    if key:
        args += ["-H", f"X-API-Key: {key}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": bench._ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": bench._ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def redis_reachable() -> bool:
    import redis

    with contextlib.suppress(Exception):
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    return False


def drop_prefix(prefix: str) -> None:
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.from_url(REDIS_URL)
        try:
            async for name in client.scan_iter(match=f"{prefix}*"):
                await client.delete(name)
        finally:
            await client.aclose()

    asyncio.run(run())


def create_key(database_url: str) -> str:
    made = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "kurs_gateway",
            "keys",
            "--database-url",
            database_url,
            "create",
            "--name",
            "bench",
            "--scopes",
            "read",
            "--quota",
            "1000000000/day",
            "--rate",
            "1000000",
            "--burst",
            "1000000",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


@contextlib.contextmanager
def mesh(data_dir: Path, extra_env: dict[str, str]) -> Iterator[dict[str, int]]:
    """tools/bench.py's mesh, with a readiness wait long enough for a loaded machine (the whole
    ECB history can take over the runner's default 120 s on two busy cores)."""
    ports = {name: bench.free_port() for name in ("gateway", "rates", "validator", "collector")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(extra_env)
    for service in ("RATES", "VALIDATOR", "COLLECTOR", "GATEWAY"):
        env[f"KURS_{service}_LOG_LEVEL"] = "WARNING"
    args = [sys.executable, "-m", "kurs_common.mesh", "--data-dir", str(data_dir), "--ready-timeout", "900"]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("kurs: serving"):
                print(f"mesh: all ECB history served after {time.monotonic() - started:.1f}s", flush=True)
                break
            if line.startswith("kurs:") and "exited" in line:
                raise SystemExit(line)
        else:
            raise SystemExit("the mesh stopped before it was ready")
        bench.threading_drain(proc)
        yield ports
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(label: str, tmp: Path, seconds: int, env: dict[str, str], key: str | None) -> dict[str, float]:
    with mesh(tmp / label.replace(" ", "-").replace(",", ""), env) as ports:
        url = f"http://127.0.0.1:{ports['gateway']}/rates/latest?base=USD"
        request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback
            reply.read()  # the body is now cached: both runs measure the fast path
        wrk(url, max(1, seconds // 3), key)  # warm-up
        figures = wrk(url, seconds, key)
        bench.report(f"[{label}] GET /rates/latest?base=USD", figures)
        return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-redis", action="store_true", help="keys on, limits counted in-process")
    ns = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run `bash tools/ensure_wrk.sh` (Debian package wrk)")
    with tempfile.TemporaryDirectory(prefix="kurs-bench-keys-") as folder:
        tmp = Path(folder)
        off = measure("keys off", tmp, ns.seconds, {}, None)
        database_url = f"sqlite:///{tmp / 'gateway.sqlite3'}"
        key = create_key(database_url)
        env = {
            "KURS_GATEWAY_AUTH": "keys",
            "KURS_GATEWAY_DATABASE_URL": database_url,
            "KURS_GATEWAY_API_KEYS": f'["{READY_KEY}"]',
        }
        prefix = f"kurs:bench:keys:{uuid.uuid4().hex}:"
        shared = not ns.no_redis and redis_reachable()
        if shared:
            env.update(KURS_GATEWAY_REDIS_URL=REDIS_URL, KURS_GATEWAY_REDIS_PREFIX=prefix)
        label = "keys on, limits via Redis" if shared else "keys on, limits in-process"
        try:
            on = measure(label, tmp, ns.seconds, env, key)
        finally:
            if shared:
                drop_prefix(prefix)
    ratio = on["rps"] / off["rps"]
    verdict = "meets" if ratio >= 0.75 and not on["non_2xx"] else "MISSES"
    print(f"  keys on / keys off: {ratio:.2f}x (target >= 0.75x, no refusals): {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
