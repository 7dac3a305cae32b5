"""kurs_gateway.routes.rates (and the compat and v6 live routes): a live body asked for since the
last change is rebuilt after the next one by the route's own builder from the snapshot, without
running the route again, and the rebuilt bytes are exactly what the route answers for that
snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.types import Message

from kurs.rates.v1 import rates_pb2
from kurs_gateway.app import create_app
from kurs_gateway.fastpath import FastPath, get_scope
from kurs_gateway.settings import GatewaySettings

LIVE = (
    ("/rates/latest", b"base=USD"),
    ("/rates/latest", b"base=GBP&symbols=USD,JPY&expand=providers"),
    ("/rates/convert", b"from=USD&to=JPY&amount=100"),
    ("/frankfurter/latest", b"symbols=USD"),
    ("/openexchangerates/api/latest.json", b""),
    ("/v6/latest/USD", b""),
    ("/v6/k/pair/USD/JPY/2.5", b""),
    ("/runa/v1/rates", b"base=EUR&symbols=USD,JPY"),
)


def rate(code: str, value: str) -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date="2026-10-30", observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


def parts(app: Any) -> tuple[FastPath, FastAPI]:
    fast = None
    while not isinstance(app, FastAPI):
        if isinstance(app, FastPath):
            fast = app
        app = app.app
    assert fast is not None
    return fast, app


async def get(app: Any, path: str, query: bytes) -> tuple[int, bytes]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {**get_scope(path, query, b"test"), "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return int(messages[0]["status"]), b"".join(m.get("body", b"") for m in messages[1:])


async def test_live_bodies_are_rebuilt_by_their_builders_with_the_routes_bytes(tmp_path: Any) -> None:
    app = create_app(GatewaySettings(database_url=f"sqlite:///{tmp_path / 'gateway.sqlite3'}"))
    fast, api = parts(app)
    api.state.rates_stub = None  # set by the lifespan; the live routes never call it
    snapshot = fast.cache.snapshot
    snapshot.replace(1, [rate("USD", "1.1"), rate("GBP", "0.8"), rate("JPY", "160")])
    for path, query in LIVE:
        assert (await get(app, path, query))[0] == 200, path  # built by the route
        assert (await get(app, path, query))[0] == 200, path  # cached: asked for since the change
    runs = fast.cache.stores

    async def route_rebuild(key: tuple[str, bytes]) -> None:
        raise AssertionError(f"{key} rebuilt by running its route")

    fast._rebuild = route_rebuild  # type: ignore[method-assign]
    snapshot.update(2, [rate("USD", "1.2"), rate("JPY", "161.5")])
    for _ in range(5):
        await asyncio.sleep(0)
    assert fast.cache.rebuilds == len(LIVE)
    assert fast.cache.stores == runs + len(LIVE)
    rebuilt = {key: fast.cache.entries[key] for key in LIVE}
    assert all(item.generation == snapshot.generation for item in rebuilt.values())
    for (path, query), item in rebuilt.items():
        fast.cache.drop((path, query))
        assert await get(app, path, query) == (200, item.body), path  # the route: same bytes
    crossed = rebuilt[("/rates/latest", b"base=GBP&symbols=USD,JPY&expand=providers")].body
    assert b'"rates":{"USD":"1.5","JPY":"201.875"}' in crossed
    assert b'"rate":"134.5833333"' in rebuilt[("/rates/convert", b"from=USD&to=JPY&amount=100")].body
