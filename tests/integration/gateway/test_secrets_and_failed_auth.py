"""The gateway's edge through its real entrypoint: API keys never appear in its output, and wrong
keys are throttled per client address (issue #17: a key in clear 41 times in the log; 2,000
wrong-key requests, not one 429).

`python -m kurs_gateway` runs with a static key, under granian (the default) and uvicorn; its
stdout and stderr are captured whole and searched for every key presented.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from support.lone_gateway import free_port, lone_gateway_env, wait_healthy

pytestmark = pytest.mark.integration

KEY = "chaos-KEY-3f9a1c2b7d10aa55"
WRONG = "wrong-KEY-77c0ffee"
MANAGED_SHAPE = "kurs_0123456789ab_notARealSecret99"


# (server, wrong-key requests): the 2,000 against the default server.
SERVERS = [("granian", 2000), ("uvicorn", 300)]


@pytest.fixture(params=SERVERS, ids=[s for s, _ in SERVERS])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    port = free_port()
    log = tmp_path / "gateway.log"
    env = lone_gateway_env(
        port,
        tmp_path,
        KURS_GATEWAY_HOST="127.0.0.1",
        KURS_GATEWAY_SERVER=request.param[0],
        KURS_GATEWAY_LOG_LEVEL="DEBUG",
        KURS_GATEWAY_API_KEYS=f'["{KEY}"]',
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kurs_gateway"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = wait_healthy(proc, port, output=lambda: log.read_text(errors="replace"))
        yield url, log, request.param[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


async def test_keys_never_logged_and_wrong_keys_throttled(gateway: tuple[str, Path, int]) -> None:
    url, log, attempts = gateway
    statuses: collections.Counter[int] = collections.Counter()
    async with httpx.AsyncClient(base_url=url, timeout=10, trust_env=False) as client:
        for key in (KEY, WRONG, MANAGED_SHAPE):
            for headers, params in (
                ({"X-API-Key": key}, {}),
                ({"Authorization": f"Bearer {key}"}, {}),
                ({}, {"api_key": key, "apikey": key, "app_id": key}),
            ):
                reply = await client.get("/rates/latest", headers=headers, params=params)
                statuses[reply.status_code] += 1
            with contextlib.suppress(OSError, WebSocketException, InvalidStatus, TimeoutError):
                async with connect(
                    f"{url.replace('http', 'ws')}/ws/rates/stream?base=EUR&api_key={key}", open_timeout=5
                ) as ws:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ws.recv(), 1)
        assert statuses[500] == 0
        # Wrong keys from one address: after a small burst (20, then 1/s), 429 with Retry-After.
        wrong: collections.Counter[int] = collections.Counter()
        retry_after: set[str] = set()
        gate = asyncio.Semaphore(20)

        async def attempt(n: int) -> None:
            async with gate:
                reply = await client.get("/rates/latest", headers={"X-API-Key": f"{WRONG}-{n}"})
                wrong[reply.status_code] += 1
                if reply.status_code == 429:
                    retry_after.add(reply.headers.get("retry-after", ""))

        started = time.monotonic()
        await asyncio.gather(*(attempt(n) for n in range(attempts)))
        took = time.monotonic() - started
    print(f"{attempts} wrong keys in {took:.1f}s: {dict(wrong)}")
    assert wrong[401] <= 20 + took + 1, dict(wrong)  # the burst, then one a second
    assert wrong[429] == attempts - wrong[401], dict(wrong)
    assert set(wrong) <= {401, 429}, dict(wrong)
    assert "" not in retry_after
    text = log.read_text(errors="replace")
    assert text.strip(), "the gateway logged nothing: the search below would prove nothing"
    print("\n".join([line[:200] for line in text.splitlines() if "redacted" in line][:3]))
    for secret in (KEY, WRONG, "notARealSecret99"):
        assert text.count(secret) == 0, [line for line in text.splitlines() if secret in line][:5]
