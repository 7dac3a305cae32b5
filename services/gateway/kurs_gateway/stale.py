"""Stale-if-error for history: a rates outage does not take `/rates/historical` and
`/rates/timeseries` down with it (issue #17).

Every 200 answer to a GET of those paths is kept, by exact path and query string, in a bounded
LRU (MAX_ENTRIES bodies, MAX_BYTES in all, each for at most MAX_AGE_SECONDS). When the same GET
later fails because an upstream is unavailable (502, 503 or 504: the rates service down,
restarting or timing out), the kept body is answered instead, with 200 and headers saying so:

    X-Kurs-Stale: stale-if-error        (this answer is the last good one, the upstream failed)
    Warning: 111 - "Revalidation Failed"
    Age: <seconds since the body was built>

A past day's rates change only when a publisher corrects them, so the last good answer is what a
client would have got; a request never answered before still gets the upstream's error. Only
upstream failures are covered: a 4xx (a bad parameter, an unknown date) passes through as is.
This sits below the fast path (kurs_gateway.fastpath), which serves fresh cached bodies itself.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATHS = frozenset({"/rates/historical", "/rates/timeseries"})
UPSTREAM_FAILURES = frozenset({502, 503, 504})
MAX_ENTRIES = 4096
MAX_BYTES = 64 * 1024 * 1024
MAX_AGE_SECONDS = 7 * 86400.0
STALE_HEADER = b"x-kurs-stale"

Key = tuple[str, bytes]


class StaleIfError:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.kept: OrderedDict[Key, tuple[bytes, float]] = OrderedDict()
        self.size = 0
        self.served = 0  # stale answers given (for tests and metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        key: Key = (scope["path"], scope["query_string"])
        status = 0
        chunks: list[bytes] = []
        swallowed = False

        async def relay(message: Message) -> None:
            nonlocal status, swallowed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status in UPSTREAM_FAILURES and self._fresh(key):
                    swallowed = True
                    return
            elif message["type"] == "http.response.body":
                if swallowed:
                    return
                if status == 200:
                    chunks.append(bytes(message.get("body", b"")))
                    if not message.get("more_body", False):
                        self._keep(key, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, relay)
        if swallowed:
            await self._answer_stale(key, send)

    def _fresh(self, key: Key) -> bool:
        kept = self.kept.get(key)
        if kept is None:
            return False
        if time.monotonic() - kept[1] > MAX_AGE_SECONDS:
            self._drop(key)
            return False
        return True

    def _keep(self, key: Key, body: bytes) -> None:
        if len(body) > MAX_BYTES // 16:
            return
        self._drop(key)
        self.kept[key] = (body, time.monotonic())
        self.size += len(body)
        while len(self.kept) > MAX_ENTRIES or self.size > MAX_BYTES:
            _, (old, _) = self.kept.popitem(last=False)
            self.size -= len(old)

    def _drop(self, key: Key) -> None:
        old = self.kept.pop(key, None)
        if old is not None:
            self.size -= len(old[0])

    async def _answer_stale(self, key: Key, send: Send) -> None:
        body, built = self.kept[key]
        self.kept.move_to_end(key)
        self.served += 1
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (STALE_HEADER, b"stale-if-error"),
            (b"warning", b'111 - "Revalidation Failed"'),
            (b"age", str(int(time.monotonic() - built)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
