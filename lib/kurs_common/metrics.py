"""Prometheus metrics shared by every service: one registry per service, gRPC interceptors and
a tiny /metrics endpoint.

Each service builds its own `ServiceMetrics` (never prometheus_client's process-global registry:
the integration tests run all four services in one process). gRPC servers get
`ServerMetricsInterceptor` (calls, latency and status per method, active streams, stream
messages); client channels get `ClientMetricsInterceptor` (unary calls). Names follow the
OpenTelemetry semantic conventions for RPC (`rpc_server_call_duration_seconds`, labels
`rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`).

Service-specific figures that already exist as state (a feed's health, the latest rates, ...) are
read at scrape time through `ServiceMetrics.add_callback`, so nothing is counted twice and the
hot paths do no extra work for them. The gRPC services serve the exposition on their own port
(`start_metrics_endpoint`, settings `KURS_<SERVICE>_METRICS_ADDRESS`); the gateway serves it at
GET /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from kurs_common.grpc_handlers import (
    MethodWrappingInterceptor,
    method_name,
    with_unary_stream,
    with_unary_unary,
)

log = logging.getLogger(__name__)

# Seconds. Fine at the low end (the gateway's fast path answers in well under a millisecond),
# long enough at the high end for a one-year time series or a bulk ingest.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    120.0,
)
# Seconds from a figure's observation to its publication: minutes for live ticks, hours to
# days for daily fixings (a weekend's Friday fixing is ~3 days old on Monday morning).
LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 4 * 86400.0)

MetricsCallback = Callable[[], Iterable[Metric]]


class _CallbackCollector(Collector):
    def __init__(self, callback: MetricsCallback) -> None:
        self.callback = callback

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self.callback())
        except Exception:  # a broken callback must not take the whole scrape down
            log.exception("metrics callback failed")
            return []


def split_method(full: str) -> tuple[str, str]:
    """ "/kurs.rates.v1.RatesService/GetLatestRates" -> ("kurs.rates.v1.RatesService", "GetLatestRates")."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def status_name(code: Any) -> str:
    """A grpc.StatusCode (or its int value, or None = OK) as its name."""
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    for candidate in grpc.StatusCode:
        if candidate.value[0] == code:
            return str(candidate.name)
    return "UNKNOWN"


class ServiceMetrics:
    """One service's metrics registry and its generic RPC instruments."""

    def __init__(self, service: str, *, process: bool = True) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        if process:
            ProcessCollector(registry=self.registry)
        self.info = Gauge(
            "kurs_service_info", "The Kurs service behind this endpoint", ["service"], registry=self.registry
        )
        self.info.labels(service).set(1)
        rpc = ["rpc_system", "rpc_service", "rpc_method", "rpc_grpc_status_code"]
        self.server_duration = Histogram(
            "rpc_server_call_duration_seconds",
            "gRPC calls handled by this server: duration (streams: until they end) and final status",
            rpc,
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.server_active_streams = Gauge(
            "rpc_server_active_streams",
            "Server-streaming calls open right now (stream subscribers)",
            ["rpc_system", "rpc_service", "rpc_method"],
            registry=self.registry,
        )
        self.server_stream_messages = Counter(
            "rpc_server_stream_messages_sent",
            "Messages sent on server streams since start",
            ["rpc_system", "rpc_service", "rpc_method"],
            registry=self.registry,
        )
        self.client_duration = Histogram(
            "rpc_client_call_duration_seconds",
            "Unary gRPC calls made by this service: duration and final status",
            rpc,
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )

    def add_callback(self, callback: MetricsCallback) -> None:
        """Register a function that yields metric families at every scrape."""
        self.registry.register(_CallbackCollector(callback))

    def server_interceptor(self) -> ServerMetricsInterceptor:
        return ServerMetricsInterceptor(self)

    def client_interceptor(self) -> ClientMetricsInterceptor:
        return ClientMetricsInterceptor(self)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


Family = TypeVar("Family", GaugeMetricFamily, CounterMetricFamily)


def _filled(family: Family, rows: Iterable[tuple[Sequence[str], float]]) -> Family:
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def labelled_gauge(
    name: str, documentation: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]
) -> GaugeMetricFamily:
    return _filled(GaugeMetricFamily(name, documentation, labels=list(labels)), rows)


def labelled_counter(
    name: str, documentation: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]
) -> CounterMetricFamily:
    """`name` without the `_total` suffix (prometheus_client appends it)."""
    return _filled(CounterMetricFamily(name, documentation, labels=list(labels)), rows)


def failure_code(
    exc: BaseException, ctx: grpc.aio.ServicerContext, cancelled: tuple[type[BaseException], ...]
) -> str:
    """The status a call that raised `exc` is counted under: CANCELLED for the `cancelled` kinds,
    else the code the servicer set (UNKNOWN when it set none, or for a non-Exception)."""
    if isinstance(exc, cancelled):
        return "CANCELLED"
    if isinstance(exc, Exception):
        return status_name(ctx.code() or grpc.StatusCode.UNKNOWN)
    return "UNKNOWN"


class ServerMetricsInterceptor(MethodWrappingInterceptor):
    """Times every unary and server-streaming call; counts open streams and streamed messages."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def wrap(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        service, name = split_method(method_name(details))
        duration = self.metrics.server_duration

        def observe(started: float, code: str) -> None:
            duration.labels("grpc", service, name, code).observe(time.perf_counter() - started)

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                code = "UNKNOWN"
                try:
                    reply = await inner_uu(request, ctx)
                    code = status_name(ctx.code())
                    return reply
                except BaseException as exc:
                    code = failure_code(exc, ctx, (asyncio.CancelledError,))
                    raise
                finally:
                    observe(started, code)

            return with_unary_unary(handler, unary_unary)
        if handler.unary_stream:
            inner_us = handler.unary_stream
            active = self.metrics.server_active_streams.labels("grpc", service, name)
            sent = self.metrics.server_stream_messages.labels("grpc", service, name)

            async def unary_stream(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started = time.perf_counter()
                code = "UNKNOWN"
                active.inc()
                try:
                    async for item in inner_us(request, ctx):
                        yield item
                        sent.inc()
                    code = status_name(ctx.code())
                except BaseException as exc:  # a closed stream (GeneratorExit) was cancelled too
                    code = failure_code(exc, ctx, (asyncio.CancelledError, GeneratorExit))
                    raise
                finally:
                    active.dec()
                    observe(started, code)

            return with_unary_stream(handler, unary_stream)
        return handler


class ClientMetricsInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Times outgoing unary calls until their status is known."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        service, name = split_method(method_name(client_call_details))
        started = time.perf_counter()
        call = await continuation(client_call_details, request)
        code = "OK"
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            code = status_name(exc.code())
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        finally:
            self.metrics.client_duration.labels("grpc", service, name, code).observe(
                time.perf_counter() - started
            )
        return call


@dataclass
class MetricsEndpoint:
    """A minimal HTTP/1.1 server answering GET /metrics with one registry's exposition."""

    server: asyncio.Server
    port: int

    async def stop(self) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2.0)


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


async def start_metrics_endpoint(address: str, metrics: ServiceMetrics) -> MetricsEndpoint:
    """Serve `metrics` at http://<address>/metrics ("127.0.0.1:0" picks a free port).

    The exposition is produced on the event loop, so scrape-time callbacks read the service's
    state without locks.
    """
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                reply = _response("405 Method Not Allowed", "text/plain", b"GET /metrics\n")
            elif parts[1].split("?", 1)[0] != "/metrics":
                reply = _response("404 Not Found", "text/plain", b"see /metrics\n")
            else:
                body = metrics.exposition()
                reply = _response("200 OK", CONTENT_TYPE_LATEST, b"" if parts[0] == "HEAD" else body)
            writer.write(reply)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, int(port_text))
    port = int(server.sockets[0].getsockname()[1])
    log.info("metrics endpoint listening", extra={"address": address, "port": port})
    return MetricsEndpoint(server, port)


class _StartedService(Protocol):
    metrics: MetricsEndpoint | None

    async def stop(self, grace: float = ...) -> None: ...


StartedService = TypeVar("StartedService", bound=_StartedService)


async def attach_metrics_endpoint(
    service: StartedService, address: str, metrics: ServiceMetrics | None
) -> StartedService:
    """Serve `metrics` for a started service (nothing when None); if that fails, stop the service
    at once and re-raise, so a failed start leaves nothing running."""
    if metrics is not None:
        try:
            service.metrics = await start_metrics_endpoint(address, metrics)
        except BaseException:
            await service.stop(0)
            raise
    return service
