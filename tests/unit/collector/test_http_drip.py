"""A provider that drips its body one byte at a time is cut off by the fetch timeout (kurs_collector.http)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from kurs_collector.breaker import CircuitBreaker
from kurs_collector.errors import FeedError
from kurs_collector.http import Fetcher, Request


class _SlowDrip:
    """An ASGI app that sends headers, then one byte every 0.2 s, forever."""

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]}
        )  # type: ignore[operator]
        while True:
            await send({"type": "http.response.body", "body": b"x", "more_body": True})  # type: ignore[operator]
            await asyncio.sleep(0.2)


@pytest.fixture
async def drip_url() -> AsyncIterator[str]:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_SlowDrip(), log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.force_exit = True
    server.should_exit = True
    await task
    sock.close()


async def test_a_dripping_provider_times_out_as_a_whole(drip_url: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        fetcher = Fetcher(
            client,
            source="drip",
            base_url=drip_url,
            breaker=CircuitBreaker(5, 60.0),
            timeout=0.5,
            retries=1,
            backoff=0.01,
            backoff_max=0.02,
            user_agent="kurs-test",
        )
        started = asyncio.get_running_loop().time()
        with pytest.raises(FeedError, match="timed out"):
            await fetcher.fetch(Request("/data.csv"))
        assert asyncio.get_running_loop().time() - started < 5
