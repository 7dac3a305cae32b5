"""kurs_gateway.fastpath.FastPath on counting ASGI apps: live bodies rebuilt by their builders
after a change (the previous body served meanwhile, in chunks), single flight of concurrent
misses, stale-while-revalidate of history bodies, and a failed rebuild that drops its entry."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.types import Message, Receive, Scope, Send

from kurs.rates.v1 import rates_pb2
from kurs_gateway.fastpath import BodyCache, FastPath
from kurs_gateway.snapshot import LiveSnapshot


def rate(code: str, value: str, day: str = "2026-10-30") -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date=day, observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


class RouteApp:
    """Stands in for a history route: builds a body and stores it (BodyCache.store)."""

    def __init__(self, cache: BodyCache, *, delay: float = 0.0) -> None:
        self.cache = cache
        self.delay = delay
        self.calls = 0
        self.fail = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"bad"})
            return
        body = f"{scope['path']}@{self.cache.snapshot.sequence}".encode()
        self.cache.store(scope["path"], scope["query_string"], body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def get(front: FastPath, path: str) -> tuple[int, bytes]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [],
    }
    await front(scope, receive, send)
    return int(messages[0]["status"]), b"".join(m.get("body", b"") for m in messages[1:])


def setup(*, delay: float = 0.0, ttl: float = 60.0) -> tuple[LiveSnapshot, RouteApp, FastPath]:
    snapshot = LiveSnapshot()
    snapshot.replace(1, [rate("USD", "1.1")])
    cache = BodyCache(snapshot, max_entries=100, history_ttl=ttl)
    app = RouteApp(cache, delay=delay)
    return snapshot, app, FastPath(app, cache)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def fail_the_next_rebuild(snapshot: LiveSnapshot, app: Any, front: FastPath) -> None:
    """A hot /rates/latest whose rebuild after the next change fails: its entry is dropped."""
    await get(front, "/rates/latest")
    await get(front, "/rates/latest")
    app.fail = True
    snapshot.update(2, [rate("USD", "1.2")])
    await settle()
    assert ("/rates/latest", b"") not in front.cache.entries


async def test_concurrent_misses_of_one_request_ask_the_route_once() -> None:
    _, app, front = setup(delay=0.05)
    await get(front, "/rates/historical")  # the first store makes the path a cacheable one
    front.cache.entries.clear()
    app.calls = 0
    answers = await asyncio.gather(*(get(front, "/rates/historical") for _ in range(20)))
    assert app.calls == 1
    assert all(answer == (200, b"/rates/historical@1") for answer in answers)


async def test_an_expired_history_body_is_served_while_it_is_refreshed() -> None:
    snapshot, app, front = setup(ttl=0.05)
    await get(front, "/currencies")
    await asyncio.sleep(0.06)  # expired
    snapshot.update(2, [rate("GBP", "0.8")])  # same business day: history bodies stay valid by day
    assert await get(front, "/currencies") == (200, b"/currencies@1")  # stale, refresh started
    await settle()
    assert app.calls == 2
    assert await get(front, "/currencies") == (200, b"/currencies@2")
    await asyncio.sleep(0.11)  # beyond twice the TTL: too old to serve while refreshing
    assert await get(front, "/currencies") == (200, b"/currencies@2")
    assert app.calls == 3


async def test_a_history_refresh_that_fails_drops_the_entry() -> None:
    _, app, front = setup(ttl=0.05)
    await get(front, "/currencies")
    await asyncio.sleep(0.06)  # expired
    app.fail = True
    assert await get(front, "/currencies") == (200, b"/currencies@1")  # stale while it is refreshed
    await settle()
    assert ("/currencies", b"") not in front.cache.entries
    assert await get(front, "/currencies") == (400, b"bad")  # the route's own answer


def test_the_snapshot_keeps_its_newest_day_on_every_change() -> None:
    snapshot = LiveSnapshot()
    assert snapshot.day is None
    snapshot.replace(1, [rate("USD", "1.1", "2026-10-29"), rate("GBP", "0.8", "2026-10-30")])
    assert str(snapshot.day) == "2026-10-30"
    snapshot.update(2, [rate("USD", "1.2", "2026-10-31")])
    assert str(snapshot.day) == "2026-10-31"
    snapshot.update(3, [rate("USD", "1.2", "2026-10-28")])  # the newest figure corrected back
    assert str(snapshot.day) == "2026-10-30"


class BuilderApp:
    """Stands in for a live route that hands its body's builder to the cache (BodyCache.live)."""

    def __init__(self, cache: BodyCache) -> None:
        self.cache = cache
        self.calls = 0  # times the route ran
        self.builds = 0  # times a body was built, by the route or by a rebuild
        self.fail = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        path = scope["path"]
        snapshot = self.cache.snapshot

        def build() -> bytes:
            self.builds += 1
            if self.fail:
                raise ValueError("the currency is no longer served")
            return f"{path}@{snapshot.sequence}".encode()

        body = self.cache.live(path, scope["query_string"], build)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def setup_builders() -> tuple[LiveSnapshot, BuilderApp, FastPath]:
    snapshot = LiveSnapshot()
    snapshot.replace(1, [rate("USD", "1.1")])
    cache = BodyCache(snapshot, max_entries=100, history_ttl=60.0)
    app = BuilderApp(cache)
    return snapshot, app, FastPath(app, cache)


async def test_a_live_body_is_rebuilt_by_its_builder_without_running_the_route_again() -> None:
    snapshot, app, front = setup_builders()
    assert await get(front, "/rates/latest") == (200, b"/rates/latest@1")  # the route
    assert await get(front, "/rates/latest") == (200, b"/rates/latest@1")  # cached: hot
    snapshot.update(2, [rate("USD", "1.2")])
    assert await get(front, "/rates/latest") == (200, b"/rates/latest@1")  # previous, meanwhile
    await settle()
    assert await get(front, "/rates/latest") == (200, b"/rates/latest@2")
    assert (app.calls, app.builds, front.cache.rebuilds) == (1, 2, 1)  # built again, route not run
    item = front.cache.entries[("/rates/latest", b"")]
    assert item.generation == snapshot.generation
    assert item.build is not None


async def test_a_live_body_nobody_asked_for_since_the_last_change_is_not_rebuilt() -> None:
    snapshot, app, front = setup_builders()
    await get(front, "/rates/latest")  # built by the route, never answered from the cache: not hot
    snapshot.update(2, [rate("USD", "1.2")])
    await settle()
    assert (app.calls, app.builds, front.cache.rebuilds) == (1, 1, 0)
    assert await get(front, "/rates/latest") == (200, b"/rates/latest@2")  # a plain miss: the route
    assert app.calls == 2


async def test_a_builder_that_fails_drops_its_entry_and_the_route_answers_next() -> None:
    snapshot, app, front = setup_builders()
    await fail_the_next_rebuild(snapshot, app, front)
    app.fail = False
    assert await get(front, "/rates/latest") == (200, b"/rates/latest@2")
    assert app.calls == 2


async def test_live_rebuilds_run_in_chunks_with_requests_in_between(monkeypatch: Any) -> None:
    monkeypatch.setattr("kurs_gateway.fastpath.CHUNK_SECONDS", 0.0)  # one body per chunk
    snapshot, app, front = setup_builders()
    paths = ["/rates/latest", "/frankfurter/latest", "/openexchangerates/api/latest.json"]
    for path in paths:
        await get(front, path)
        await get(front, path)  # hot
    snapshot.update(2, [rate("USD", "1.2")])
    await asyncio.sleep(0)  # the rebuild task runs its first chunk, then yields
    rebuilt = [p for p in paths if front.cache.entries[(p, b"")].generation == snapshot.generation]
    assert rebuilt == paths[:1]
    assert await get(front, paths[2]) == (200, paths[2].encode() + b"@1")  # served meanwhile
    await settle()
    assert [await get(front, p) for p in paths] == [(200, p.encode() + b"@2") for p in paths]
    assert app.calls == len(paths)
