"""OpenTelemetry tracing: provider setup and gRPC interceptors that propagate W3C trace context.

Tracing is always wired (spans are created, context is propagated across gRPC hops); spans are
exported only when an exporter is configured (`console`), so a default run prints nothing extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

_configured = False


def setup_tracing(service: str, exporter: str = "none") -> None:
    """Install a tracer provider for `service`. exporter: "none" or "console"."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def _method_name(details: Any) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Starts a server span per RPC, continuing the caller's trace from the metadata."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        carrier = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        parent = propagate.extract(carrier)
        name = _method_name(handler_call_details)
        tracer = trace.get_tracer("kurs.grpc")

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                token = context.attach(parent)
                try:
                    with tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
                        span.set_attribute("rpc.system", "grpc")
                        try:
                            return await inner_uu(request, ctx)
                        except Exception as exc:
                            span.set_status(Status(StatusCode.ERROR, str(exc)))
                            raise
                finally:
                    context.detach(token)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
                    span.set_attribute("rpc.system", "grpc")
                    async for item in inner_us(request, ctx):
                        yield item

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
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
