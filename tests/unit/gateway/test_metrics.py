"""kurs_gateway.routes.metrics.HttpMetrics on a bare ASGI app: route labels (also for answers
given before routing), status codes, WebSocket counts."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send

from kurs_gateway.fastpath import BodyCache
from kurs_gateway.routes.metrics import UNMATCHED, GatewayMetrics, HttpMetrics
from kurs_gateway.snapshot import LiveSnapshot


async def _noop(*_: Any) -> None:
    return None


ROUTES = [
    Route("/rates/latest", _noop),
    Route("/frankfurter/{period}", _noop),
    WebSocketRoute("/ws/x", _noop),
]


def count(metrics: GatewayMetrics, route: str, status: str) -> float:
    value = metrics.service.registry.get_sample_value(
        "http_server_request_duration_seconds_count",
        {"http_request_method": "GET", "http_route": route, "http_response_status_code": status},
    )
    return value or 0.0


async def _call(front: HttpMetrics, scope: Scope) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    await front(scope, receive, send)


def _scope(path: str, kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "method": "GET", "path": path, "root_path": "", "headers": [], "query_string": b""}


async def test_requests_are_labelled_with_their_route_template() -> None:
    snapshot = LiveSnapshot()
    metrics = GatewayMetrics(snapshot, BodyCache(snapshot, 10, 60.0), object())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        status = 404 if scope["path"] == "/nope" else 200
        if scope["path"] == "/frankfurter/2025-01-15":
            scope["route"] = ROUTES[1]  # what the router does for requests that reach it
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    front = HttpMetrics(app, metrics, ROUTES, tracing=False)
    await _call(front, _scope("/rates/latest"))  # answered before routing: matched by template
    await _call(front, _scope("/frankfurter/2025-01-15"))
    await _call(front, _scope("/frankfurter/2025-01-15"))
    await _call(front, _scope("/nope"))
    assert count(metrics, "/rates/latest", "200") == 1
    assert count(metrics, "/frankfurter/{period}", "200") == 2
    assert count(metrics, UNMATCHED, "404") == 1


async def test_a_failing_app_is_counted_as_a_500_and_websockets_are_counted() -> None:
    snapshot = LiveSnapshot()
    metrics = GatewayMetrics(snapshot, BodyCache(snapshot, 10, 60.0), object())
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            seen.append(int(metrics.websockets.labels("/ws/x")._value.get()))
            await send({"type": "websocket.send", "text": "hi"})
            return
        raise RuntimeError("boom")

    front = HttpMetrics(app, metrics, ROUTES, tracing=False)
    with contextlib.suppress(RuntimeError):
        await _call(front, _scope("/rates/latest"))
    assert count(metrics, "/rates/latest", "500") == 1
    await _call(front, _scope("/ws/x", "websocket"))
    assert seen == [1]
    registry = metrics.service.registry
    assert registry.get_sample_value("kurs_gateway_websocket_connections", {"http_route": "/ws/x"}) == 0
    assert (
        registry.get_sample_value("kurs_gateway_websocket_messages_sent_total", {"http_route": "/ws/x"}) == 1
    )


async def test_an_early_answer_is_sent_and_counted_without_entering_the_app() -> None:
    snapshot = LiveSnapshot()
    cache = BodyCache(snapshot, 10, 60.0)
    metrics = GatewayMetrics(snapshot, cache, object())
    cache.live("/rates/latest", b"", lambda: b"{}")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a cached body is answered before the app")

    def early(scope: Scope) -> Any:
        return cache.entries.get((scope["path"], scope["query_string"]))

    front = HttpMetrics(app, metrics, ROUTES, tracing=False, early=early)
    for _ in range(3):
        await _call(front, _scope("/rates/latest"))
    assert count(metrics, "/rates/latest", "200") == 3
    registry = metrics.service.registry
    labels = {"http_request_method": "GET", "http_route": "/rates/latest", "http_response_status_code": "200"}
    assert (
        registry.get_sample_value("http_server_request_duration_seconds_bucket", {**labels, "le": "+Inf"})
        == 3
    )
    assert (
        registry.get_sample_value("http_server_request_duration_seconds_bucket", {**labels, "le": "10.0"})
        == 3
    )
