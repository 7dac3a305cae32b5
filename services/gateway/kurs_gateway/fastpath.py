"""Prebuilt response bodies, and an ASGI front that serves them without entering FastAPI.

A body computed by a route is stored under its exact path and raw query string. Bodies that
depend on the live snapshot are valid until the snapshot changes (its generation); bodies of
historical queries are valid while the newest business day is unchanged and for at most
`history_ttl` seconds (a publisher's correction of a past day shows after that).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from kurs_gateway.snapshot import LiveSnapshot

JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class _Cached:
    body: bytes
    generation: int | None  # live bodies: the snapshot generation they were built from
    day: object  # history bodies: the snapshot's newest day when built
    expires: float


class BodyCache:
    def __init__(
        self,
        snapshot: LiveSnapshot,
        max_entries: int,
        history_ttl: float,
        max_bytes: int = 64 * 1024 * 1024,
        max_body: int = 1024 * 1024,
    ) -> None:
        self.snapshot = snapshot
        self.max_entries = max_entries
        self.history_ttl = history_ttl
        self.max_bytes = max_bytes  # all cached bodies together
        self.max_body = max_body  # a larger body is not cached
        self.size = 0
        self._entries: OrderedDict[tuple[str, bytes], _Cached] = OrderedDict()
        # Read by the gateway's metrics at scrape time (plain ints: nothing on the hot path).
        self.hits = 0
        self.misses = 0
        self.stores = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, path: str, query: bytes) -> bytes | None:
        key = (path, query)
        item = self._entries.get(key)
        if item is None:
            self.misses += 1
            return None
        if item.generation is not None:
            valid = item.generation == self.snapshot.generation
        else:
            valid = item.day == self.snapshot.day and item.expires > time.monotonic()
        if not valid:
            self.size -= len(self._entries.pop(key).body)
            self.misses += 1
            return None
        self.hits += 1
        return item.body

    def store(
        self, path: str, query: bytes, body: bytes, *, live: bool, generation: int | None = None
    ) -> None:
        if len(body) > self.max_body:
            return
        self.stores += 1
        if live:
            item = _Cached(body, self.snapshot.generation if generation is None else generation, None, 0.0)
        else:
            item = _Cached(body, None, self.snapshot.day, time.monotonic() + self.history_ttl)
        key = (path, query)
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self._entries[key] = item
        self.size += len(body)
        while len(self._entries) > self.max_entries or self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted.body)


class FastPath:
    """Answers GETs whose body is cached; everything else goes to the wrapped app."""

    def __init__(self, app: ASGIApp, cache: BodyCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self.cache.lookup(scope["path"], scope["query_string"])
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
