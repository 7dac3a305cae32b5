"""Run a grpc.aio server the same way in every service: health checking, reflection,
tracing (and metrics when given), port 0 for tests, and a graceful drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
) -> RunningServer:
    """Create, register and start a server on `address` ("127.0.0.1:0" picks a free port).

    `register` adds the servicers and returns their full service names, which are then
    published through health checking and reflection. With `metrics`, every call is also
    timed and counted (kurs_common.metrics).
    """
    interceptors: list[grpc.aio.ServerInterceptor] = [ServerTracingInterceptor()]
    if metrics is not None:
        interceptors.append(metrics.server_interceptor())
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


def insecure_channel(target: str, metrics: ServiceMetrics | None = None) -> grpc.aio.Channel:
    """A client channel with our message limits, keepalive and trace propagation (and, with
    `metrics`, the duration and status of every unary call)."""
    interceptors: list[grpc.aio.ClientInterceptor] = [ClientTracingInterceptor()]
    if metrics is not None:
        interceptors.append(metrics.client_interceptor())
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
