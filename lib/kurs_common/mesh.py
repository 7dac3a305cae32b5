"""Run the whole mesh locally: rates, validator, collector and gateway as four processes.

    python -m kurs_common.mesh [--data-dir var] [--gateway-port 8000] [--rates-port 50051] ...

Each service is started with `python -m kurs_<service>` (the same entrypoint a container uses)
and talks gRPC over loopback. Addresses are derived from the port options unless the service's
own environment variable is already set. Ctrl-C (SIGINT) or SIGTERM stops all four, each given
time to drain; if one exits on its own, the others are stopped too and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

SERVICES = ("rates", "validator", "collector", "gateway")


def build_env(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    host = "127.0.0.1"
    data_dir = Path(args.data_dir).resolve()
    defaults = {
        "KURS_RATES_ADDRESS": f"{host}:{args.rates_port}",
        "KURS_RATES_DATABASE_URL": f"sqlite:///{data_dir / 'kurs.sqlite3'}",
        "KURS_VALIDATOR_ADDRESS": f"{host}:{args.validator_port}",
        "KURS_VALIDATOR_RATES_ADDRESS": f"{host}:{args.rates_port}",
        "KURS_VALIDATOR_DATABASE_URL": f"sqlite:///{data_dir / 'validator.sqlite3'}",
        "KURS_COLLECTOR_ADDRESS": f"{host}:{args.collector_port}",
        "KURS_COLLECTOR_VALIDATOR_ADDRESS": f"{host}:{args.validator_port}",
        "KURS_COLLECTOR_STATE_DIR": str(data_dir / "collector"),
        "KURS_GATEWAY_HOST": host,
        "KURS_GATEWAY_PORT": str(args.gateway_port),
        "KURS_GATEWAY_STREAM_PORT": str(args.stream_port),
        "KURS_GATEWAY_RATES_ADDRESS": f"{host}:{args.rates_port}",
        "KURS_GATEWAY_COLLECTOR_ADDRESS": f"{host}:{args.collector_port}",
        "KURS_GATEWAY_VALIDATOR_ADDRESS": f"{host}:{args.validator_port}",
        "KURS_GATEWAY_DATABASE_URL": f"sqlite:///{data_dir / 'gateway.sqlite3'}",
        "KURS_GATEWAY_ALERTS_DATABASE_URL": f"sqlite:///{data_dir / 'alerts.sqlite3'}",
    }
    env = dict(base)
    if "KURS_DATABASE_URL" in env:
        defaults.pop("KURS_RATES_DATABASE_URL")
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def _get_json(url: str, api_key: str | None = None) -> object | None:
    request = urllib.request.Request(url, headers={"X-API-Key": api_key} if api_key else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=1) as reply:  # noqa: S310 - loopback URL we built
            return json.loads(reply.read()) if reply.status == 200 else None
    except (OSError, ValueError):
        return None


def _sources_settled(body: object) -> bool:
    """Every enabled source has finished its first run (no source still IDLE)."""
    if not isinstance(body, dict):
        return False
    return all(s.get("state") != "SOURCE_STATE_IDLE" for s in body.get("sources", []) if s.get("enabled"))


def wait_ready(
    gateway: str,
    procs: list[subprocess.Popen[bytes]],
    timeout: float,
    stopping: Callable[[], bool],
    api_key: str | None = None,
    managed_keys: bool = False,
) -> bool:
    """Wait until the gateway is ready and every enabled source has delivered its first run
    (or a process exits, or Ctrl-C arrives)."""
    deadline = time.monotonic() + timeout
    keys_without_static_key = managed_keys and api_key is None
    while time.monotonic() < deadline and not stopping():
        if any(p.poll() is not None for p in procs):
            return False
        if _get_json(f"{gateway}/readyz") is not None and (
            keys_without_static_key  # /sources needs a key it does not have: readiness alone
            or _sources_settled(_get_json(f"{gateway}/sources", api_key))
        ):
            return True
        time.sleep(0.25)
    return False


def first_api_key(env: dict[str, str]) -> str | None:
    """The first of KURS_GATEWAY_API_KEYS (a JSON list), for the readiness poll of /sources."""
    try:
        keys = json.loads(env.get("KURS_GATEWAY_API_KEYS", "[]"))
    except ValueError:
        return None
    return str(keys[0]) if isinstance(keys, list) and keys else None


def stop_all(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            proc.wait(remaining)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kurs-mesh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("KURS_DATA_DIR", "var"))
    parser.add_argument("--gateway-port", type=int, default=8000)
    parser.add_argument("--stream-port", type=int, default=8001)  # the gateway's native WS stream
    parser.add_argument("--rates-port", type=int, default=50051)
    parser.add_argument("--validator-port", type=int, default=50052)
    parser.add_argument("--collector-port", type=int, default=50053)
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    env = build_env(args, dict(os.environ))
    started = time.monotonic()
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    procs: list[subprocess.Popen[bytes]] = []
    for name in SERVICES:
        # New process group: a terminal's Ctrl-C reaches only the supervisor, which stops the
        # children in order (gateway first, rates last) and gives each time to drain.
        procs.append(
            subprocess.Popen([sys.executable, "-m", f"kurs_{name}"], env=env, start_new_session=True)  # noqa: S603
        )
    gateway = f"http://{env['KURS_GATEWAY_HOST']}:{env['KURS_GATEWAY_PORT']}"
    managed = env.get("KURS_GATEWAY_AUTH", "").strip().lower() == "keys"
    if wait_ready(gateway, procs, args.ready_timeout, lambda: stopping, first_api_key(env), managed):
        print(
            f"kurs: serving on {gateway}; all sources loaded after {time.monotonic() - started:.1f}s "
            f"(try {gateway}/rates/latest); Ctrl-C stops all four services",
            file=sys.stderr,
            flush=True,
        )
    code = 0
    while not stopping:
        for name, proc in zip(SERVICES, procs, strict=True):
            if proc.poll() is not None:
                print(
                    f"kurs: {name} exited with code {proc.returncode}; stopping", file=sys.stderr, flush=True
                )
                stopping = True
                code = 1
        time.sleep(0.2)
    stop_all(procs, grace=10.0)
    print("kurs: stopped", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
