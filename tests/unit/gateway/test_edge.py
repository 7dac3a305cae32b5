"""kurs_gateway.edge.BodyReadTimeout: a body that stops arriving gets a 408 problem, the app's
late answer is dropped, and requests without a body pass straight through."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from kurs_gateway.edge import BodyReadTimeout


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RuntimeError("client went away")  # as Starlette's ClientDisconnect would
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def call(app: BodyReadTimeout, method: str, chunks: list[bytes | None]) -> list[Message]:
    sent: list[Message] = []
    queue = list(chunks)

    async def receive() -> Message:
        chunk = queue.pop(0) if queue else None
        if chunk is None:
            await asyncio.sleep(10)  # a client that stopped sending
        return {"type": "http.request", "body": chunk or b"", "more_body": bool(queue)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": method, "path": "/rates/convert/bulk", "headers": []}
    await app(scope, receive, send)
    return sent


async def test_a_stalled_body_is_answered_408_and_the_connection_closed() -> None:
    sent = await call(BodyReadTimeout(reading_app, 0.05), "POST", [b"[", None])
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    problem = orjson.loads(sent[1]["body"])
    assert problem["status"] == 408
    assert "0.05 s" in problem["detail"]


async def test_a_body_arriving_in_time_is_untouched() -> None:
    sent = await call(BodyReadTimeout(reading_app, 1.0), "POST", [b"[1,", b"2]"])
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"[1,2]"


async def test_get_requests_pass_straight_through() -> None:
    seen: list[Receive] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    await BodyReadTimeout(app, 0.01)({"type": "http", "method": "GET"}, receive, send)
    assert seen == [receive]  # not wrapped
