"""The gateway's metrics: an ASGI front that times every request (the cached fast path included)
and traces it, and GET /metrics.

* `http_server_request_duration_seconds{http_request_method, http_route, http_response_status_code}`
  (OpenTelemetry semantic-convention names): one histogram per route template, so its `_count`
  is the request rate and its buckets the latency. A fast-path hit is labelled with the template
  of the route that built the cached body (remembered per path), so `/rates/latest` is one
  series whichever way it was answered.
* `kurs_gateway_websocket_connections`, `kurs_gateway_websocket_messages_sent_total`.
* At scrape time: the body cache (hits, misses, stores, entries, bytes), the live snapshot
  (sequence, currencies, age of the newest rate: the served end of the ingest lag), and whether
  the rates stream is connected. Upstream gRPC calls: `rpc_client_call_duration_seconds`.

With an exporter configured (`KURS_GATEWAY_OTEL_EXPORTER`), every HTTP request and every
WebSocket connection is a SERVER span continuing the caller's W3C trace context (`traceparent`
header, on the WebSocket handshake too): FastAPI's own OpenTelemetry support traces what reaches
it, this front traces what is answered before (the fast path); the gRPC calls made while
handling a request carry its context on (kurs_common.telemetry).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily, Metric
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurs_common.metrics import LATENCY_BUCKETS, ServiceMetrics, gauge, labelled_counter
from kurs_common.telemetry import extract_headers
from kurs_common.timeutil import utcnow
from kurs_gateway import deps
from kurs_gateway.fastpath import BodyCache, CachedAnswer
from kurs_gateway.params import only
from kurs_gateway.snapshot import LiveSnapshot

router = APIRouter(tags=["operations"])

UNMATCHED = "(unmatched)"
perf_counter = time.perf_counter  # a global name: one lookup less on every request
UNROUTED = frozenset({401, 403, 404, 429})  # answered without a route (auth, limits, unknown path)
MAX_REMEMBERED_PATHS = 10_000
HTTP_LABELS = ("http_request_method", "http_route", "http_response_status_code")


class LatencySeries:
    """One histogram series: bucket counts (the last one is +Inf) and the sum of observations."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # the first bucket with le >= seconds
        self.total += seconds


class RouteLatency:
    """A labelled Prometheus histogram observed with one bisect and two additions per request
    (no lock, no label lookup, no per-bucket loop: it is on every request's path, the cached
    fast path included) and turned into a histogram family only at scrape time. The gateway's
    requests are handled on one event loop thread, so plain integers are safe."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(b for b in buckets if b != float("inf"))
        self._series: dict[tuple[str, ...], LatencySeries] = {}

    def labels(self, *values: str) -> LatencySeries:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = LatencySeries(self.bounds)
        return series

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in list(self._series.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*self.bounds, float("inf")), series.counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
            family.add_metric(list(values), buckets, series.total)
        yield family


class GatewayMetrics:
    """The gateway's registry: HTTP and WebSocket instruments plus scrape-time state."""

    def __init__(self, snapshot: LiveSnapshot, cache: BodyCache, state: Any) -> None:
        self.service = ServiceMetrics("gateway")
        registry = self.service.registry
        self.started = time.time()
        self.http = RouteLatency(
            "http_server_request_duration_seconds",
            "HTTP requests answered, by route template, method and status: duration",
            HTTP_LABELS,
            LATENCY_BUCKETS,
        )
        registry.register(self.http)
        self.websockets = Gauge(
            "kurs_gateway_websocket_connections",
            "WebSocket clients connected",
            ["http_route"],
            registry=registry,
        )
        self.websocket_messages = Counter(
            "kurs_gateway_websocket_messages_sent",
            "Messages sent to WebSocket clients",
            ["http_route"],
            registry=registry,
        )

        def collect() -> Iterator[Metric]:
            yield labelled_counter(
                "kurs_gateway_cache_lookups",
                "Prebuilt-body lookups of GET requests (hit: answered without entering FastAPI)",
                ["result"],
                [(("hit",), float(cache.hits)), (("miss",), float(cache.misses))],
            )
            yield labelled_counter(
                "kurs_gateway_cache_stores", "Bodies stored in the cache", [], [((), cache.stores)]
            )
            yield labelled_counter(
                "kurs_gateway_cache_stale_hits",
                "Answered with the previous body while its background rebuild was under way",
                [],
                [((), cache.stale_hits)],
            )
            yield labelled_counter(
                "kurs_gateway_cache_rebuilds",
                "Bodies rebuilt in the background (after a change, or an expired history body)",
                [],
                [((), cache.rebuilds)],
            )
            yield gauge("kurs_gateway_cache_entries", "Bodies cached", len(cache))
            yield gauge("kurs_gateway_cache_bytes", "Bytes of all cached bodies", cache.size)
            yield gauge("kurs_gateway_snapshot_sequence", "Sequence of the live snapshot", snapshot.sequence)
            yield gauge(
                "kurs_gateway_snapshot_currencies", "Currencies in the live snapshot", len(snapshot.entries)
            )
            newest = max((e.observed_at for e in snapshot.entries.values()), default=None)
            if newest is not None:
                age = (utcnow() - newest).total_seconds()
                yield gauge("kurs_gateway_snapshot_age_seconds", "Age of the newest rate being served", age)
            feed = getattr(state, "feed", None)
            connected = bool(feed is not None and feed.connected)
            yield gauge(
                "kurs_gateway_rates_stream_connected", "1 while the StreamRates feed is connected", connected
            )

        self.service.add_callback(collect)

    def exposition(self) -> bytes:
        return self.service.exposition()


def leaf_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes themselves, also inside routers included by FastAPI (which wraps each router)."""
    out: list[BaseRoute] = []
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:
            out.extend(leaf_routes(inner))
        else:
            out.append(route)
    return out


class HttpMetrics:
    """Outermost ASGI front: labels, times and (optionally) traces every request."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: GatewayMetrics,
        routes: Sequence[BaseRoute],
        tracing: bool,
        early: Callable[[Scope], CachedAnswer | None] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = leaf_routes(routes)
        self.tracing = tracing
        # The fast path's lookup, when nothing between here and it may refuse a request (no key
        # guard, no rate limit, no shadow): a cached GET is then answered here, outermost.
        self.early = None if tracing else early
        self._templates: dict[str, str] = {}
        self._children: dict[tuple[str, str, int], LatencySeries] = {}
        self._hits: dict[str, LatencySeries] = {}  # path -> its GET 200 series (early answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            early = self.early
            if early is not None and scope["method"] == "GET":
                started = perf_counter()
                path: str = scope["path"]
                series = self._hits.get(path)
                item = early(scope) if series is not None or not path.startswith("/v6/") else None
                if item is not None:
                    await send({"type": "http.response.start", "status": 200, "headers": item.headers})
                    await send({"type": "http.response.body", "body": item.body})
                    if series is None:
                        series = self._hit_series(scope)
                    series.observe(perf_counter() - started)
                    return
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def template(self, scope: Scope, status: int) -> str:
        """The route template of a request (bounded label values)."""
        path: str = scope["path"]
        route = scope.get("route")
        if route is not None:
            template = str(getattr(route, "path", UNMATCHED))
            if path not in self._templates:
                if len(self._templates) >= MAX_REMEMBERED_PATHS:
                    self._templates.clear()
                self._templates[path] = template
            return template
        known = self._templates.get(path)
        if known is not None:
            return known
        if status in UNROUTED:  # refused before routing, or not found: spare the matching
            return UNMATCHED
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return str(getattr(candidate, "path", UNMATCHED))
        return UNMATCHED

    def _hit_series(self, scope: Scope) -> LatencySeries:
        series = self._series(scope, 200)[1]
        if len(self._hits) >= MAX_REMEMBERED_PATHS:
            self._hits.clear()
        self._hits[scope["path"]] = series
        return series

    def _series(self, scope: Scope, status: int) -> tuple[str, LatencySeries]:
        template = self.template(scope, status)
        key = (scope["method"], template, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics.http.labels(scope["method"], template, str(status))
        return template, child

    def _observe(self, scope: Scope, status: int, seconds: float) -> str:
        template, child = self._series(scope, status)
        child.observe(seconds)
        return template

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time a request FastAPI handles. With tracing on, FastAPI traces what it handles (its
        native OpenTelemetry support: HTTP and WebSocket server spans continuing the caller's
        `traceparent`); what is answered before FastAPI is entered (fast-path hits, refused keys)
        gets its SERVER span here, after the fact."""
        started_ns = time.time_ns() if self.tracing else 0
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = self._observe(scope, status, time.perf_counter() - started)
            if started_ns and "app" not in scope:  # never reached FastAPI (Starlette sets scope["app"])
                self._late_span(scope, template, status, started_ns)

    @staticmethod
    def _late_span(scope: Scope, template: str, status: int, started_ns: int) -> None:
        method = scope["method"]
        span = trace.get_tracer("kurs.http").start_span(
            f"{method} {template}",
            context=extract_headers(scope["headers"]),
            kind=SpanKind.SERVER,
            start_time=started_ns,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "http.route": template,
                "http.response.status_code": status,
                "kurs.fast_path": status == 200,
            },
        )
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.template(scope, 0)
        connected = self.metrics.websockets.labels(route)
        sent = self.metrics.websocket_messages.labels(route)

        async def counting_send(message: Message) -> None:
            if message["type"] == "websocket.send":
                sent.inc()
            await send(message)

        started_ns = time.time_ns() if self.tracing else 0
        connected.inc()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            connected.dec()
            if started_ns and "app" not in scope:  # served ahead of FastAPI (the stream front)
                self._late_websocket_span(scope, route, started_ns)

    @staticmethod
    def _late_websocket_span(scope: Scope, template: str, started_ns: int) -> None:
        """The SERVER span FastAPI's telemetry gives a WebSocket it handles, for one served
        before FastAPI: the whole connection, continuing the caller's `traceparent`."""
        trace.get_tracer("kurs.http").start_span(
            f"WS {template}",
            context=extract_headers(scope["headers"]),
            kind=SpanKind.SERVER,
            start_time=started_ns,
            attributes={
                "network.protocol.name": "websocket",
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "ws"),
                "http.route": template,
            },
        ).end()


@router.get("/metrics", dependencies=[Depends(only())], include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of the gateway's metrics."""
    registry = deps.metrics(request)
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)
