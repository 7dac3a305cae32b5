"""Edge limits of the gateway as served (`python -m kurs_gateway`, granian), from raw sockets:

* slowloris: 1,000 connections that send their headers one line at a time are all closed soon
  after the header read timeout, and a normal request is answered meanwhile;
* 100 connections sending 2 MB headers are refused (431) or closed, and the gateway's memory
  does not grow with them;
* a request body that stops arriving gets a 408 problem after the body read timeout.

No rates service is needed: /healthz answers without one (the stream just keeps reconnecting).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from support.lone_gateway import free_port, lone_gateway_env, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_HEADER_BYTES = 16384


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    folder: Path = tmp_path_factory.mktemp("edge")
    port = free_port()
    env = lone_gateway_env(
        port,
        folder,
        KURS_GATEWAY_LOG_LEVEL="WARNING",
        KURS_GATEWAY_HEADER_READ_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        KURS_GATEWAY_BODY_READ_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        KURS_GATEWAY_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
    )
    proc = subprocess.Popen([sys.executable, "-m", "kurs_gateway"], env=env)
    try:
        url = wait_healthy(proc, port)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest_asyncio.fixture(loop_scope="module")
async def gateway(gateway_process: tuple[str, int]) -> AsyncIterator[str]:
    yield gateway_process[0]


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (granian's workers), in KiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes | None:
    """What the server sent before closing (b"" for a bare close), or None if still open."""
    data = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        return None
    except (ConnectionResetError, BrokenPipeError):
        pass
    return data


async def test_slow_headers_do_not_keep_1000_connections_open(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    connections = []
    for _ in range(1000):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: kurs\r\n")
        connections.append((reader, writer))
    started = time.monotonic()

    async def drip(writer: asyncio.StreamWriter) -> None:
        """One more header line every 0.2 s, never the blank line that ends them."""
        with contextlib.suppress(OSError):
            for i in range(100):
                writer.write(f"X-Slow-{i}: a\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.2)

    drips = [asyncio.create_task(drip(w)) for _, w in connections]
    try:
        async with httpx.AsyncClient(base_url=gateway) as client:  # a normal client is served
            assert (await client.get("/healthz", timeout=5)).status_code == 200
        results = await asyncio.gather(*(closed_within(r, HEADER_TIMEOUT + 9) for r, _ in connections))
        elapsed = time.monotonic() - started
    finally:
        for task in drips:
            task.cancel()
        await asyncio.gather(*drips, return_exceptions=True)
        for _, writer in connections:
            writer.close()
    still_open = sum(1 for r in results if r is None)
    assert still_open == 0, f"{still_open} of 1000 slow connections still open after {elapsed:.1f}s"
    assert all(not r or r.startswith(b"HTTP/1.1 408") for r in results if r is not None)


async def test_2mb_headers_are_refused_without_growing_memory(
    gateway: str, gateway_process: tuple[str, int]
) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    pid = gateway_process[1]
    before = tree_rss_kib(pid)
    big = b"X-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n"

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: kurs\r\n")
            with contextlib.suppress(OSError):
                writer.write(big)
                await writer.drain()
            answer = await closed_within(reader, 10)
            assert answer is not None, "a connection with 2 MB headers stayed open"
            return answer
        finally:
            writer.close()

    answers = await asyncio.gather(*(one() for _ in range(100)))
    assert all(not a or a.startswith(b"HTTP/1.1 431") for a in answers), {a[:40] for a in answers}
    grown_mib = (tree_rss_kib(pid) - before) / 1024
    assert grown_mib < 50, f"the gateway grew by {grown_mib:.0f} MiB"
    async with httpx.AsyncClient(base_url=gateway) as client:
        assert (await client.get("/healthz", timeout=5)).status_code == 200


async def test_a_stalled_request_body_gets_408(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /rates/convert/bulk HTTP/1.1\r\nHost: kurs\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n[{"
        )
        await writer.drain()
        started = time.monotonic()
        answer = await closed_within(reader, BODY_TIMEOUT + 9)
        elapsed = time.monotonic() - started
    finally:
        writer.close()
    assert answer is not None, "a stalled body kept its connection open"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in answer
    assert elapsed < BODY_TIMEOUT + 5
