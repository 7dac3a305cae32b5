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
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from websockets.typing import Subprotocol

from support.lone_gateway import free_port, lone_gateway_env, wait_healthy

pytestmark = pytest.mark.integration

CLIENTS = 300


def start_gateway(folder: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = lone_gateway_env(port, folder, KURS_GATEWAY_LOG_LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kurs_gateway"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_healthy(proc, port)
    except AssertionError:
        proc.kill()
        raise
    return proc, port


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
