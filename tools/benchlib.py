"""What the benchmark scripts share: free ports, readiness waits, stopping a process, wrk runs
and their figures, rounds alternating with a ceiling and their medians, the mesh runner (measured
once it settles), the bare-app ceiling and a scratch PostgreSQL + Redis.

Imported by tools/bench*.py as `tools.benchlib` (each script puts the repository root on
sys.path first, since it runs as a script with only tools/ on the path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CONNECTIONS = 64
THREADS = 2
WRK = shutil.which("wrk") or "wrk"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 180.0) -> None:
    """Poll `url` until it answers 200 (SystemExit when `timeout` seconds pass first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
            if reply.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {url}")


def stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (those still running)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def settle(pid: int, quiet: float = 0.3, window: float = 2.0, timeout: float = 120.0) -> tuple[float, float]:
    """Wait until the processes under `pid` use less than `quiet` of one core over `window`
    seconds (a mesh just started still loads, indexes and warms up after it reports ready: a
    figure measured meanwhile measures that too). Returns (seconds waited, the last window's
    share of a core); gives up after `timeout` seconds."""
    started = time.monotonic()
    share = float("inf")
    while time.monotonic() - started < timeout:
        pids = process_tree(pid)
        before = cpu_seconds(pids)
        time.sleep(window)
        share = (cpu_seconds(pids) - before) / window
        if share < quiet:
            break
    return time.monotonic() - started, share


def ms(text: str) -> float:
    """A wrk duration ("812.00us", "1.20ms", "2.01s") in milliseconds (nan when unreadable)."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_figures(out: str) -> dict[str, float]:
    """req/s, p50, p99 (ms), non-2xx responses and whether there were socket errors, from wrk's
    `--latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms(p50.group(1)) if p50 else float("nan"),
        "p99_ms": ms(p99.group(1)) if p99 else float("nan"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if re.search(r"Socket errors: ", out) else 0.0,
    }


def wrk(
    url: str, seconds: int, connections: int = CONNECTIONS, headers: dict[str, str] | None = None
) -> dict[str, float]:
    threads = str(min(THREADS, connections))
    command = [WRK, "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    return wrk_figures(out)


FIGURES = ("rps", "p50_ms", "p99_ms")


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def median_interval(values: list[float], level: float = 0.95, draws: int = 5000) -> tuple[float, float]:
    """The `level` interval of the median of `values` by bootstrap (resampling them with
    replacement `draws` times; seeded, so a run prints the same interval for the same rounds)."""
    pick = random.Random(0).choice
    medians = sorted(median([pick(values) for _ in values]) for _ in range(draws))
    cut = int(draws * (1 - level) / 2)
    return medians[cut], medians[draws - 1 - cut]


def alternate(
    url: str, ceiling: str, rounds: int, part: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """`url` and its ceiling measured in alternating `part`-second rounds, so that both see the
    same machine (it is shared: its load moves within seconds). Returns (ours, ceiling) rounds."""
    ours: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    for _ in range(rounds):
        bare.append(wrk(ceiling, part))
        ours.append(wrk(url, part))
    return ours, bare


def round_seconds(seconds: int) -> int:
    """The length of one alternating round: a third of a load run, at least 2 s."""
    return max(2, round(seconds / 3))


def p99_pairs(ours: list[dict[str, float]], bare: list[dict[str, float]]) -> str:
    """Each round's p99, ours/ceiling, in ms."""
    return ", ".join(f"{o['p99_ms']:.1f}/{b['p99_ms']:.1f}" for o, b in zip(ours, bare, strict=True))


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median round's figures (each figure's own median), non-2xx answers summed."""
    return {
        **{key: median([run[key] for run in runs]) for key in FIGURES},
        "non_2xx": sum(r["non_2xx"] for r in runs),
    }


def report(name: str, figures: dict[str, float]) -> None:
    extra = ""
    if figures.get("non_2xx"):
        extra += f" non_2xx={int(figures['non_2xx'])}"
    if figures.get("socket_errors"):
        extra += " socket_errors=yes"
    print(
        f"{name:<44} {figures['rps']:>10.0f} req/s   p50 {figures['p50_ms']:>7.2f} ms   "
        f"p99 {figures['p99_ms']:>7.2f} ms{extra}",
        flush=True,
    )


def drain_stderr(proc: subprocess.Popen[str]) -> None:
    """Read a child's stderr to its end in a daemon thread (so a full pipe never blocks it)."""

    def drain() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=drain, daemon=True).start()


@contextlib.contextmanager
def mesh(
    data_dir: Path, extra_env: dict[str, str] | None = None, live: bool = True
) -> Iterator[dict[str, int]]:
    """The four services (`python -m kurs_common.mesh`) on free ports, yielded once the whole ECB
    history is served (the wait is long enough for two busy cores); `live`: the collector's replay
    feed sends a full set of ticks through the mesh every second."""
    ports = {name: free_port() for name in ("gateway", "rates", "validator", "collector")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(extra_env or {})
    for service in ("RATES", "VALIDATOR", "COLLECTOR", "GATEWAY"):
        env[f"KURS_{service}_LOG_LEVEL"] = "WARNING"
    if live:
        env["KURS_COLLECTOR_REPLAY_ENABLED"] = "true"
        env["KURS_COLLECTOR_REPLAY_DAYS_PER_SECOND"] = "1"
    args = [sys.executable, "-m", "kurs_common.mesh", "--data-dir", str(data_dir), "--ready-timeout", "900"]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    args += ["--stream-port", "0"]  # the gateway's native stream port on a free port
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)  # noqa: S603
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("kurs: serving"):
                print(
                    f"mesh: all ECB history loaded and served after {time.monotonic() - started:.1f}s",
                    flush=True,
                )
                break
            if line.startswith("kurs:") and "exited" in line:
                raise SystemExit(line)
        else:
            raise SystemExit("the mesh stopped before it was ready")
        drain_stderr(proc)
        waited, share = settle(proc.pid)
        print(f"mesh: settled after {waited:.1f}s more ({share:.0%} of a core over the last 2 s)", flush=True)
        yield ports
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


BARE_APP = """
import os
from urllib.parse import parse_qs

ANSWERS = {}  # query string -> (headers, body), built once: every answer is prebuilt bytes


def prebuilt(size):
    body = b"x" * size
    return [(b"content-type", b"application/json"), (b"content-length", str(size).encode())], body


DEFAULT = prebuilt(int(os.environ["BENCH_BODY_SIZE"]))


def answer(query):
    found = ANSWERS.get(query)
    if found is None:
        found = ANSWERS[query] = prebuilt(int(parse_qs(query.decode())["size"][0]))
    return found


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = scope["query_string"]
    headers, body = answer(query) if query else DEFAULT
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


@contextlib.contextmanager
def baseline_server(body_size: int, server: str = "uvicorn", workers: int = 1) -> Iterator[str]:
    """A bare ASGI app returning a prebuilt body: on uvicorn with the gateway's own settings
    (uvloop, httptools, 1 process, no access log), or on granian (Rust HTTP, `workers`
    processes sharing the port): the Python ceiling on this machine. The body has `body_size`
    bytes, or `?size=N` bytes when asked so (each size built once, on its first request)."""
    folder = Path(tempfile.mkdtemp(prefix="kurs-baseline-"))
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    env = dict(os.environ, BENCH_BODY_SIZE=str(body_size), PYTHONPATH=str(folder))
    if server == "granian":
        command = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning",
            "bare_app:app",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    # Its own session, like each service of the mesh (kurs_common.mesh): with the kernel's
    # autogroup scheduling, a process in the load generator's session shares that session's CPU
    # share, one in its own session gets a share of its own; on a shared machine that placement
    # alone moved a bare app 3-6x (docs/benchmarks.md), so every server measured here gets its own.
    proc = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def drop_redis_prefix(redis_url: str, prefix: str) -> None:
    """Delete every Redis key under `prefix` (a benchmark's scratch keys)."""
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.from_url(redis_url)
        try:
            async for key in client.scan_iter(match=f"{prefix}*"):
                await client.delete(key)
        finally:
            await client.aclose()

    asyncio.run(run())


@contextlib.contextmanager
def postgres_and_redis() -> Iterator[dict[str, str]]:
    """A scratch PostgreSQL database and Redis key prefix for one mesh run (dropped afterwards)."""
    import asyncpg

    admin = os.environ.get("KURS_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("KURS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"kurs_bench_{os.getpid()}"
    prefix = f"kurs:bench:{os.getpid()}:"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            "KURS_DATABASE_URL": admin.rsplit("/", 1)[0] + f"/{name}",
            "KURS_REDIS_URL": redis_url,
            "KURS_RATES_REDIS_PREFIX": prefix,
        }
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        drop_redis_prefix(redis_url, prefix)
