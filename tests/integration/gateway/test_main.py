"""The gateway as served (`python -m kurs_gateway`, __main__.serve_granian): stopped with SIGTERM
while 300 WebSocket clients are still connected to its main port, its worker runs the whole
lifespan shutdown (the stream listener, channels, the key store's usage flush) and exits cleanly.

In granian's multi-threaded runtime (its default for ASGI) the worker aborted instead ("Cannot
drop pointer into Python heap without the thread being attached", granian issues #799 and #884),
before the lifespan heard of the shutdown; the single-threaded runtime does not.

No rates service is needed: the clients hold GraphQL WebSockets (/graphql, graphql-transport-ws)
waiting for their connection_init, which needs no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

pytestmark = pytest.mark.integration

CLIENTS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(folder: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(
        KURS_GATEWAY_PORT=str(port),
        KURS_GATEWAY_STREAM_PORT="",
        KURS_GATEWAY_RATES_ADDRESS=f"127.0.0.1:{free_port()}",  # nobody there: not needed here
        KURS_GATEWAY_COLLECTOR_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_VALIDATOR_ADDRESS=f"127.0.0.1:{free_port()}",
        KURS_GATEWAY_DATABASE_URL=f"sqlite:///{folder / 'gateway.sqlite3'}",
        KURS_GATEWAY_LOG_LEVEL="INFO",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kurs_gateway"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start")


async def hold_clients(port: int, stopped: asyncio.Event) -> int:
    """Connect CLIENTS GraphQL WebSockets, then keep them open until the gateway goes away."""
    url = f"ws://127.0.0.1:{port}/graphql"
    protocol = Subprotocol("graphql-transport-ws")
    sockets = await asyncio.gather(
        *(websockets.connect(url, subprotocols=[protocol], open_timeout=30) for _ in range(CLIENTS))
    )
    connected = sum(1 for ws in sockets if ws.subprotocol == "graphql-transport-ws")
    stopped.set()  # the caller sends SIGTERM now, with every client still connected
    await asyncio.gather(*(ws.wait_closed() for ws in sockets))
    return connected


def test_sigterm_with_websocket_clients_on_the_main_port_runs_the_whole_shutdown(tmp_path: Path) -> None:
    proc, port = start_gateway(tmp_path)
    try:

        async def scenario() -> int:
            ready = asyncio.Event()
            clients = asyncio.create_task(hold_clients(port, ready))
            await ready.wait()
            proc.send_signal(signal.SIGTERM)
            return await asyncio.wait_for(clients, 30)

        assert asyncio.run(scenario()) == CLIENTS
        _, log = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "panicked" not in log, log[-2000:]
    assert "gateway stopped" in log, log[-2000:]
    assert proc.returncode == 0, log[-2000:]
