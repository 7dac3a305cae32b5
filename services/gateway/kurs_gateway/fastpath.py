"""Prebuilt response bodies, and an ASGI front that serves them without entering FastAPI.

A body computed by a route is stored under its exact path and raw query string. Bodies that
depend on the live snapshot are valid until the snapshot changes (its generation); bodies of
historical queries are valid while the newest business day is unchanged and for at most
`history_ttl` seconds (a publisher's correction of a past day shows after that).

Rebuilds stay off the request path (issue #16):
* a live body asked for since the last change is rebuilt in the background right after the
  next change (at most `max_hot` of them, in chunks of at most CHUNK_SECONDS of work between
  two yields to the event loop), and its previous body keeps being served until the new one is
  stored; a live body nobody asked for is simply left to expire (no work per change
  proportional to the cache);
* an expired history body is refreshed in the background on the first request after it
  expired, which is still answered with the previous body (for at most one more `history_ttl`);
* concurrent misses of the same path and query wait for the first one (single flight) instead
  of each asking the rates service.
A body is always built by the same code whichever way it is refreshed. A live route keeps its
body with `BodyCache.live`, handing over the function that built it from the snapshot (its
parameters already validated): the rebuild calls that function alone, about 0.07 ms for every
currency, where running the route through FastAPI again took 0.5 ms. A history body
(`BodyCache.store`) is refreshed by running the route itself (a GET through the wrapped app,
below the key guard). A rebuild that fails drops the entry and the next request sees the
route's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurs_gateway.snapshot import LiveSnapshot

log = logging.getLogger(__name__)

JSON_HEADERS = [(b"content-type", b"application/json")]
MAX_CACHEABLE_PATHS = 10_000
REBUILD_TIMEOUT_SECONDS = 30.0
CHUNK_SECONDS = 0.001  # live bodies rebuilt from the snapshot for this long, then requests go first

Key = tuple[str, bytes]
Build = Callable[[], bytes]  # a live body from the snapshot as it is now (raises when it cannot)


def get_scope(path: str, query: bytes, host: bytes = b"kurs-gateway-rebuild") -> dict[str, Any]:
    """An ASGI scope of a plain GET from inside the gateway (a background rebuild runs its route
    with it)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", host)],
        "client": None,
        "server": None,
        "state": {},
    }


def history_response(request: HTTPConnection, cache: BodyCache, body: Mapping[str, Any]) -> Response:
    """A route's answer from the rates service, kept while the newest business day is unchanged
    (and for at most `history_ttl`)."""
    raw = orjson.dumps(body)
    cache.store(request.url.path, request.scope["query_string"], raw)
    return Response(raw, media_type="application/json")


def live_response(request: HTTPConnection, cache: BodyCache, build: Build) -> Response:
    """A route's answer built from the live snapshot by `build`, kept with `build` so the cache
    builds it again after each change while it is asked for (`BodyCache.live`)."""
    body = cache.live(request.url.path, request.scope["query_string"], build)
    return Response(body, media_type="application/json")


class CachedAnswer:
    __slots__ = ("body", "build", "day", "expires", "generation", "headers", "hot")

    def __init__(
        self, body: bytes, generation: int | None, day: object, expires: float, build: Build | None = None
    ) -> None:
        self.body = body
        self.build = build  # live bodies: how to build it again after a change (history: None)
        self.generation = generation  # live bodies: the snapshot generation they were built from
        self.day = day  # history bodies: the snapshot's newest day when built
        self.expires = expires
        self.hot = False  # live bodies: asked for since the last change (rebuilt after the next)
        self.headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]


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
        self.entries: OrderedDict[Key, CachedAnswer] = OrderedDict()
        self.paths: set[str] = set()  # paths some body was stored under (single-flight candidates)
        # Read by the gateway's metrics at scrape time (plain ints: nothing on the hot path).
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self.stale_hits = 0  # answered with the previous body while its rebuild was under way
        self.rebuilds = 0

    def __len__(self) -> int:
        return len(self.entries)

    def valid(self, item: CachedAnswer) -> bool:
        if item.generation is not None:
            return item.generation == self.snapshot.generation
        return item.day == self.snapshot.day and item.expires > time.monotonic()

    def lookup(self, path: str, query: bytes) -> bytes | None:
        """The body stored for this request while it is current (else None, and it is dropped)."""
        key = (path, query)
        item = self.entries.get(key)
        if item is None:
            self.misses += 1
            return None
        if not self.valid(item):
            self.drop(key)
            self.misses += 1
            return None
        self.hits += 1
        return item.body

    def drop(self, key: Key) -> None:
        item = self.entries.pop(key, None)
        if item is not None:
            self.size -= len(item.body)

    def live(self, path: str, query: bytes, build: Build) -> bytes:
        """Build a live body from the snapshot now and keep it, with `build` to rebuild it after
        the next change without running the route again (the route's parameters are validated
        before; `build` reads the snapshot each time it is called, and raises what the route
        would answer instead)."""
        generation = self.snapshot.generation
        body = build()
        self._keep((path, query), CachedAnswer(body, generation, None, 0.0, build))
        return body

    def store(self, path: str, query: bytes, body: bytes) -> None:
        """Keep a history body: valid while the snapshot's newest day is unchanged, and for at
        most `history_ttl` seconds."""
        expires = time.monotonic() + self.history_ttl
        self._keep((path, query), CachedAnswer(body, None, self.snapshot.day, expires))

    def _keep(self, key: Key, item: CachedAnswer) -> None:
        if len(item.body) > self.max_body:
            return
        self.stores += 1
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self.entries[key] = item
        self.size += len(item.body)
        path = key[0]
        if path not in self.paths:
            if len(self.paths) >= MAX_CACHEABLE_PATHS:
                self.paths.clear()
            self.paths.add(path)
        while len(self.entries) > self.max_entries or self.size > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.size -= len(evicted.body)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class FastPath:
    """Answers GETs whose body is cached; everything else goes to the wrapped app."""

    def __init__(self, app: ASGIApp, cache: BodyCache, max_hot: int = 256) -> None:
        self.app = app
        self.cache = cache
        self.max_hot = max_hot
        self._hot: dict[Key, None] = {}  # live keys asked for since the last change
        self._pending: set[Key] = set()  # keys being rebuilt: their previous body is served
        self._queue: deque[Key] = deque()  # live keys to rebuild, in order
        self._worker: asyncio.Task[None] | None = None
        self._inflight: dict[Key, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        cache.snapshot.watch(self._changed)

    def answer(self, scope: Scope) -> CachedAnswer | None:
        """The cached entry that answers this GET now (current, or stale while it is rebuilt)."""
        key = (scope["path"], scope["query_string"])
        item = self.cache.entries.get(key)
        if item is None:
            return None
        cache = self.cache
        if item.generation is not None:  # live
            if item.generation == cache.snapshot.generation:
                if not item.hot and len(self._hot) < self.max_hot:
                    item.hot = True
                    self._hot[key] = None
                cache.hits += 1
                return item
            if key in self._pending:
                cache.stale_hits += 1
                return item
            return None
        if item.day == cache.snapshot.day and item.expires > time.monotonic():
            cache.hits += 1
            return item
        if key in self._pending:
            cache.stale_hits += 1
            return item
        if item.expires + cache.history_ttl > time.monotonic() and self._refresh_history(key):
            cache.stale_hits += 1
            return item
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            item = self.answer(scope)
            if item is not None:
                await send({"type": "http.response.start", "status": 200, "headers": item.headers})
                await send({"type": "http.response.body", "body": item.body})
                return
            self.cache.misses += 1
            if scope["path"] in self.cache.paths:
                await self._single_flight(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _single_flight(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope["path"], scope["query_string"])
        leader = self._inflight.get(key)
        if leader is not None:
            await asyncio.shield(leader)
            item = self.answer(scope)
            if item is not None:
                await send({"type": "http.response.start", "status": 200, "headers": item.headers})
                await send({"type": "http.response.body", "body": item.body})
                return
            await self.app(scope, receive, send)  # the first one failed: answer on our own
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            await self.app(scope, receive, send)
        finally:
            del self._inflight[key]
            done.set_result(None)

    # -- background rebuilds ---------------------------------------------------------------
    def _changed(self) -> None:
        """After a snapshot change: queue the live bodies asked for since the previous one."""
        if not self._hot:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # changed outside the event loop (tests): nothing to schedule on
            return
        hot, self._hot = self._hot, {}
        for key in hot:
            if key not in self._pending:
                self._pending.add(key)
                self._queue.append(key)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._rebuild_live(), name="fastpath-rebuild")

    async def _rebuild_live(self) -> None:
        chunk_ends = time.perf_counter() + CHUNK_SECONDS
        while self._queue:
            key = self._queue.popleft()
            item = self.cache.entries.get(key)
            try:
                if item is not None and item.build is not None:
                    self._build(key, item.build)
            finally:
                self._pending.discard(key)
            if time.perf_counter() >= chunk_ends:
                await asyncio.sleep(0)  # the chunk's time is up: requests in between two chunks
                chunk_ends = time.perf_counter() + CHUNK_SECONDS

    def _build(self, key: Key, build: Build) -> None:
        """A live body built again from the snapshot by its route's own function (no await in
        between: it is current when stored). A failure drops it: the next request runs the route."""
        self.cache.rebuilds += 1
        try:
            self.cache.live(key[0], key[1], build)
        except Exception:
            log.debug("live rebuild failed", exc_info=True, extra={"path": key[0]})
            self.cache.drop(key)

    def _refresh_history(self, key: Key) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._pending.add(key)
        task = loop.create_task(self._refresh_one(key), name="fastpath-refresh")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _refresh_one(self, key: Key) -> None:
        try:
            await self._rebuild(key)
        finally:
            self._pending.discard(key)

    async def _rebuild(self, key: Key) -> None:
        """Run the route for `key` again; its handler stores the new body. A failure drops it."""
        path, query = key
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        self.cache.rebuilds += 1
        try:
            async with asyncio.timeout(REBUILD_TIMEOUT_SECONDS):
                await self.app(get_scope(path, query), _no_body, capture)
        except Exception:  # the route's own error answer is what the next request gets
            log.debug("background rebuild failed", exc_info=True, extra={"path": path})
        item = self.cache.entries.get(key)
        if status != 200 and item is not None and not self.cache.valid(item):
            self.cache.drop(key)

    async def close(self) -> None:
        """Cancel the rebuilds under way (at shutdown)."""
        tasks = [t for t in (self._worker, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
