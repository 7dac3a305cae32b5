"""Managed API keys on the hot path: /rates/latest with keys and limits on vs. off (issue #18).

Starts the mesh twice on the embedded store (tools/benchlib.py's runner): once as `make run` does
(keys off), once with KURS_GATEWAY_AUTH=keys, a managed key carrying a rate limit and a daily
quota, and (when reachable) Redis sharing the limits under a scratch key prefix. Both runs are
loaded with wrk (64 connections, 2 threads) on /rates/latest?base=USD; the keyed run sends the
key in X-API-Key. Target: keyed >= 0.75x unkeyed. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: tools/ is on the path, the repository root is not
    sys.path.insert(0, str(ROOT))

from tools import benchlib  # noqa: E402

REDIS_URL = os.environ.get("KURS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
READY_KEY = "bench-readiness-only"  # a static key for the mesh runner's readiness poll


def wrk(url: str, seconds: int, key: str | None) -> dict[str, float]:
    return benchlib.wrk(url, seconds, headers={"X-API-Key": key} if key else None)


def redis_reachable() -> bool:
    import redis

    with contextlib.suppress(Exception):
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    return False


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


def measure(label: str, tmp: Path, seconds: int, env: dict[str, str], key: str | None) -> dict[str, float]:
    with benchlib.mesh(tmp / label.replace(" ", "-").replace(",", ""), env, live=False) as ports:
        url = f"http://127.0.0.1:{ports['gateway']}/rates/latest?base=USD"
        request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback
            reply.read()  # the body is now cached: both runs measure the fast path
        wrk(url, max(1, seconds // 3), key)  # warm-up
        figures = wrk(url, seconds, key)
        benchlib.report(f"[{label}] GET /rates/latest?base=USD", figures)
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
                benchlib.drop_redis_prefix(REDIS_URL, prefix)
    ratio = on["rps"] / off["rps"]
    verdict = "meets" if ratio >= 0.75 and not on["non_2xx"] else "MISSES"
    print(f"  keys on / keys off: {ratio:.2f}x (target >= 0.75x, no refusals): {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
