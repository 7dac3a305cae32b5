"""Run a grpc.aio server the same way in every service: health checking, reflection,
tracing (and metrics when given), port 0 for tests, and a graceful drain on SIGTERM/SIGINT.

Service-to-service authentication (optional, off without a shared secret): a caller signs a
short-lived token `<service>.<expiry unix s>.<hex HMAC-SHA256(secret, "<service>.<expiry>")>`
sent as metadata `kurs-service-token` (`ServiceToken`, given to `insecure_channel`); a server
given a `ServiceAuth` checks it for the methods its rules name (missing, malformed, expired or
wrongly signed: UNAUTHENTICATED; a valid token of a service the rule does not list:
PERMISSION_DENIED). It proves the caller holds the secret; it does not encrypt the channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kurs_common.metrics import ServiceMetrics
from kurs_common.telemetry import ClientTracingInterceptor, ServerTracingInterceptor

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]

    async def stop(self, grace: float = 5.0) -> None:
        """Mark every service NOT_SERVING, then let in-flight RPCs finish for `grace` seconds."""
        for name in (*self.service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


async def start_server(
    address: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    metrics: ServiceMetrics | None = None,
    auth: ServiceAuth | None = None,
) -> RunningServer:
    """Create, register and start a server on `address` ("127.0.0.1:0" picks a free port).

    `register` adds the servicers and returns their full service names, which are then
    published through health checking and reflection. With `metrics`, every call is also
    timed and counted (kurs_common.metrics). With `auth`, calls are authenticated by its rules.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = [ServerTracingInterceptor()]
    if metrics is not None:
        interceptors.append(metrics.server_interceptor())
    if auth is not None:
        interceptors.append(ServiceAuthInterceptor(auth))
    server = grpc.aio.server(interceptors=interceptors, options=CHANNEL_OPTIONS)
    names = tuple(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC server to {address}")
    await server.start()
    for name in (*names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("grpc server listening", extra={"address": address, "port": port, "services": names})
    return RunningServer(server, port, health_servicer, names)


async def wait_for_shutdown_signal() -> None:
    """Return once SIGTERM or SIGINT arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def insecure_channel(
    target: str, metrics: ServiceMetrics | None = None, token: ServiceToken | None = None
) -> grpc.aio.Channel:
    """A client channel with our message limits, keepalive and trace propagation (and, with
    `metrics`, the duration and status of every unary call; with `token`, every unary call
    carries this service's signed token)."""
    interceptors: list[grpc.aio.ClientInterceptor] = [ClientTracingInterceptor()]
    if metrics is not None:
        interceptors.append(metrics.client_interceptor())
    if token is not None:
        interceptors.append(ServiceTokenInterceptor(token))
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)


# -- service-to-service authentication ----------------------------------------------------------
TOKEN_METADATA = "kurs-service-token"  # noqa: S105 - a metadata key, not a secret
TOKEN_LIFETIME_SECONDS = 120
MAX_TOKEN_LIFETIME_SECONDS = 600  # a server refuses tokens valid for longer than this


def _signature(secret: str, service: str, expiry: int) -> str:
    return hmac.new(secret.encode(), f"{service}.{expiry}".encode(), hashlib.sha256).hexdigest()


@dataclass
class ServiceToken:
    """Signs this service's tokens (a fresh one when the current has less than half its life)."""

    service: str
    secret: str
    lifetime: int = TOKEN_LIFETIME_SECONDS
    clock: Callable[[], float] = time.time
    _current: tuple[int, str] = field(default=(0, ""), repr=False)

    def value(self) -> str:
        now = int(self.clock())
        expiry, token = self._current
        if expiry - now < self.lifetime // 2:
            expiry = now + self.lifetime
            token = f"{self.service}.{expiry}.{_signature(self.secret, self.service, expiry)}"
            self._current = (expiry, token)
        return token


@dataclass(frozen=True)
class ServiceAuth:
    """Which services may call which methods: `rules` maps a full method name or a prefix
    ("/kurs.rates.v1.RatesIngestService/") to the services allowed; unlisted methods are open."""

    secret: str
    rules: Mapping[str, frozenset[str]]
    clock: Callable[[], float] = time.time

    def rule_for(self, method: str) -> frozenset[str] | None:
        for prefix, services in self.rules.items():
            if method == prefix or (prefix.endswith("/") and method.startswith(prefix)):
                return services
        return None

    def check(self, token: str | None, allowed: frozenset[str]) -> tuple[grpc.StatusCode, str] | None:
        """None when `token` authenticates one of `allowed`; else the status and reason."""
        if not token:
            return grpc.StatusCode.UNAUTHENTICATED, f"{TOKEN_METADATA} metadata is required"
        service, _, rest = token.partition(".")
        expiry_text, _, signature = rest.partition(".")
        if not service or not expiry_text.isdigit() or not signature:
            return grpc.StatusCode.UNAUTHENTICATED, f"{TOKEN_METADATA}: malformed"
        expected = _signature(self.secret, service, int(expiry_text))
        if not hmac.compare_digest(expected, signature):
            return grpc.StatusCode.UNAUTHENTICATED, f"{TOKEN_METADATA}: bad signature"
        now = self.clock()
        if not now < int(expiry_text) <= now + MAX_TOKEN_LIFETIME_SECONDS:
            return grpc.StatusCode.UNAUTHENTICATED, f"{TOKEN_METADATA}: expired or too long-lived"
        if service not in allowed:
            return grpc.StatusCode.PERMISSION_DENIED, f"service {service!r} may not call this method"
        return None


class ServiceAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls to the methods `auth` names unless they carry an allowed service's token."""

    def __init__(self, auth: ServiceAuth) -> None:
        self.auth = auth

    async def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = await continuation(details)
        allowed = self.auth.rule_for(details.method)
        if allowed is None or handler is None:
            return handler
        metadata = dict(details.invocation_metadata or ())
        refused = self.auth.check(metadata.get(TOKEN_METADATA), allowed)
        if refused is None:
            return handler
        log.warning("call refused", extra={"method": details.method, "reason": refused[1]})
        return _refusing(handler, *refused)


def _refusing(handler: Any, code: grpc.StatusCode, reason: str) -> Any:
    """A handler of the same shape as `handler` that aborts every call with `code`."""

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, reason)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, reason)
        yield  # pragma: no cover - makes this an async generator

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return make(
        streaming if handler.response_streaming else unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class ServiceTokenInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds this service's signed token to every outgoing unary call."""

    def __init__(self, token: ServiceToken) -> None:
        self.token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        metadata = list(details.metadata or ())
        metadata.append((TOKEN_METADATA, self.token.value()))
        call_details = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(call_details, request)
