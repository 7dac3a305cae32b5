"""OpenTelemetry tracing: provider setup and gRPC interceptors that propagate W3C trace context.

Tracing is always wired (spans are created, context is propagated across gRPC hops); spans are
exported only when an exporter is configured, so a default run prints nothing extra:
`KURS_<SERVICE>_OTEL_EXPORTER=console` prints them, `otlp` sends them over OTLP/gRPC to
`KURS_<SERVICE>_OTEL_ENDPOINT` (default: OpenTelemetry's own `OTEL_EXPORTER_OTLP_ENDPOINT`, else
localhost:4317). Span attributes follow the semantic conventions (`rpc.system`, `rpc.service`,
`rpc.method`, `rpc.grpc.status_code`; HTTP in the gateway's middleware).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from kurs_common.grpc_handlers import (
    MethodWrappingInterceptor,
    method_name,
    with_unary_stream,
    with_unary_unary,
)

_configured = False
EXPORTERS = ("none", "console", "otlp")
# Only these headers can carry trace context (W3C Trace Context and Baggage).
PROPAGATION_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})


def endpoint_variable(service: str) -> str:
    """ "kurs-rates" -> "KURS_RATES_OTEL_ENDPOINT" (the service's own setting)."""
    return f"KURS_{service.removeprefix('kurs-').upper().replace('-', '_')}_OTEL_ENDPOINT"


def build_exporter(exporter: str, endpoint: str = "") -> SpanExporter | None:
    """The span exporter named by a service's `otel_exporter` setting (None for "none")."""
    if exporter == "none":
        return None
    if exporter == "console":
        return ConsoleSpanExporter()
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if not endpoint:
            return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else localhost:4317
        insecure = not endpoint.startswith("https://")
        return OTLPSpanExporter(endpoint=endpoint, insecure=insecure)
    raise ValueError(f"otel_exporter: must be one of {', '.join(EXPORTERS)}, got {exporter!r}")


def setup_tracing(service: str, exporter: str = "none", endpoint: str | None = None) -> None:
    """Install a tracer provider for `service`. exporter: "none", "console" or "otlp".

    endpoint: the OTLP/gRPC collector ("host:port" or "http(s)://host:port"); None reads the
    service's `KURS_<SERVICE>_OTEL_ENDPOINT`.
    """
    global _configured
    if _configured:
        return
    if endpoint is None:
        endpoint = os.environ.get(endpoint_variable(service), "")
    span_exporter = build_exporter(exporter, endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def extract_headers(headers: Iterable[tuple[bytes, bytes]]) -> context.Context:
    """The trace context carried by ASGI (HTTP or WebSocket handshake) headers."""
    carrier: dict[str, str] = {}
    for key, value in headers:
        name = key.decode("latin-1").lower()
        if name in PROPAGATION_HEADERS:
            carrier[name] = value.decode("latin-1")
    return propagate.extract(carrier)


def _code_value(ctx: Any, default: int = 0) -> int:
    """The numeric gRPC status a servicer set (rpc.grpc.status_code); `default` when none."""
    code = ctx.code()
    if isinstance(code, grpc.StatusCode):
        return int(code.value[0])
    return int(code) if isinstance(code, int) else default


class ServerTracingInterceptor(MethodWrappingInterceptor):
    """Starts a server span per RPC, continuing the caller's trace from the metadata."""

    def wrap(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        carrier = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        parent = propagate.extract(carrier)
        name = method_name(details)
        tracer = trace.get_tracer("kurs.grpc")
        rpc_service, _, rpc_method = name.lstrip("/").rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": rpc_method}

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                token = context.attach(parent)
                try:
                    with tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
                        span.set_attributes(attributes)
                        try:
                            reply = await inner_uu(request, ctx)
                            span.set_attribute("rpc.grpc.status_code", _code_value(ctx))
                            return reply
                        except Exception as exc:
                            span.set_attribute("rpc.grpc.status_code", _code_value(ctx, 2))
                            span.set_status(Status(StatusCode.ERROR, str(exc)))
                            raise
                finally:
                    context.detach(token)

            return with_unary_unary(handler, unary_unary)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
                    span.set_attributes(attributes)
                    async for item in inner_us(request, ctx):
                        yield item
                    span.set_attribute("rpc.grpc.status_code", _code_value(ctx))

            return with_unary_stream(handler, unary_stream)
        return handler


class ClientTracingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Injects the current trace context into outgoing unary calls."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        metadata = list(client_call_details.metadata or ())
        metadata.extend(carrier.items())
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)
