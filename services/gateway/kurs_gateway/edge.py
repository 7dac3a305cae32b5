"""Edge limits the server does not enforce itself: how long a request body may take to arrive.

The header size limit and the header read timeout are the HTTP server's (granian: its HTTP/1
buffer and header read timeout, set from the gateway settings in `__main__`). A request body is
read by the app, so its deadline is kept here: every wait for the next chunk of a body is
bounded by `body_read_timeout_seconds`. When it runs out before an answer was started, the
client gets a 408 problem with `Connection: close` and the app sees a disconnected client (its
own late answer is discarded); GET/HEAD requests carry no body and pass straight through.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def _timeout_problem(seconds: float) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Request timeout",
            "status": 408,
            "detail": f"the request body did not arrive within {seconds:g} s",
        }
    )
    return body, [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]


class BodyReadTimeout:
    """Bounds each wait for a chunk of a request body; answers 408 when it runs out."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODYLESS:
            await self.app(scope, receive, send)
            return
        started = answered = False

        async def timed_receive() -> Message:
            nonlocal answered
            try:
                async with asyncio.timeout(self.seconds):
                    return await receive()
            except TimeoutError:
                if not started and not answered:
                    answered = True
                    body, headers = _timeout_problem(self.seconds)
                    await send({"type": "http.response.start", "status": 408, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the client was already told 408: the app's late answer is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not answered:
                raise
