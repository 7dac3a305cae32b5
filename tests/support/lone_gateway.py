"""A gateway on its own through its real entrypoint (`python -m kurs_gateway`), with nothing
upstream: its environment and the wait until it answers /healthz. The rates, collector and
validator addresses are loopback ports nobody listens on (its rates stream keeps reconnecting);
its native stream port stays off; its keys live in a SQLite file of its own.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lone_gateway_env(port: int, folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a lone gateway on `port` (this environment without KURS_ and OTEL_
    variables), with `settings` (KURS_GATEWAY_...) on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KURS_", "OTEL_"))}
    env.update(
        KURS_GATEWAY_PORT=str(port),
        KURS_GATEWAY_STREAM_PORT="",
        KURS_GATEWAY_RATES_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_COLLECTOR_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_VALIDATOR_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_DATABASE_URL=f"sqlite:///{folder / 'gateway.sqlite3'}",
    )
    env.update(settings)
    return env


def wait_healthy(
    proc: subprocess.Popen[str] | subprocess.Popen[bytes],
    port: int,
    seconds: float = 60.0,
    output: Callable[[], str] = lambda: "",
) -> str:
    """The gateway's URL once it answers /healthz; AssertionError (with the end of `output`) if
    the process exits or `seconds` pass first."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200:
                return url
        assert proc.poll() is None, f"the gateway exited: {output()[-3000:]}"
        assert time.monotonic() < deadline, f"the gateway was not healthy in {seconds:.0f} s"
        time.sleep(0.1)
