"""A local webhook receiver for the alert tests: it fails, times out and recovers on purpose, and
acts on each idempotency key once, as a careful receiver does."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Receiver:
    """A webhook receiver: /ok answers 200; /flaky 500 twice per event, then 200; /slow sleeps past
    the gateway's deadline on an event's first attempt; /down 503 until `down` is cleared."""

    url: str = ""
    down: bool = True
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    acted: set[tuple[str, str]] = field(default_factory=set)  # keys acted on (a key only once)
    answered_ok: Counter[tuple[str, str]] = field(default_factory=Counter)  # 2xx answers per key
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)
    bad_signatures: int = 0
    secrets: dict[str, str] = field(default_factory=dict)  # rule id -> secret

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        key = request.headers["idempotency-key"]
        body = await request.body()
        self.attempts[(path, key)] += 1
        event = orjson.loads(body)
        expected = (
            "sha256=" + hmac.new(self.secrets[event["rule_id"]].encode(), body, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(expected, request.headers["x-kurs-signature"]):
            self.bad_signatures += 1
            return Response(status_code=401)
        if path == "/flaky" and self.attempts[(path, key)] <= 2:
            return Response(status_code=500)
        if path == "/down" and self.down:
            return Response(status_code=503)
        if (path, key) not in self.acted:  # what a receiver keeping idempotency keys does
            self.acted.add((path, key))
            self.bodies[key] = event
        self.answered_ok[(path, key)] += 1
        if path == "/slow" and self.attempts[(path, key)] == 1:
            await asyncio.sleep(1.5)  # acted on, but the answer comes after the deadline
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def serve_receiver(receiver: Receiver) -> AsyncIterator[str]:
    app = Starlette(
        routes=[Route(p, receiver.handle, methods=["POST"]) for p in ("/ok", "/flaky", "/slow", "/down")]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", access_log=False, log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
