"""create_app(settings): the FastAPI application, wrapped by the cached-body fast path.

served_app(): what the server runs (granian calls it in each worker process): settings from the
environment, logging and telemetry set up, then create_app.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from kurs.collector.v1 import collector_pb2_grpc
from kurs.rates.v1 import rates_pb2_grpc
from kurs.validator.v1 import validator_pb2_grpc
from kurs_common.grpcserver import insecure_channel
from kurs_gateway import grpc_analysis, problems
from kurs_gateway.alerts import engine as alerts_engine
from kurs_gateway.edge import BodyReadTimeout
from kurs_gateway.fastpath import BodyCache, FastPath
from kurs_gateway.keys.access import Access
from kurs_gateway.routes import admin as admin_routes
from kurs_gateway.routes import alerts as alerts_routes
from kurs_gateway.routes import analysis as analysis_routes
from kurs_gateway.routes import bulk as bulk_routes
from kurs_gateway.routes import (
    compat,
    exchangerate_api,
    graphql,
    graphql_ws,
    health,
    quality,
    rates,
    runa,
    stream,
)
from kurs_gateway.routes import dashboard as dashboard_routes
from kurs_gateway.routes import metrics as metrics_routes
from kurs_gateway.routes import usage as usage_routes
from kurs_gateway.series_front import SeriesFront
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.shadow import Shadow
from kurs_gateway.shadow import router as shadow_router
from kurs_gateway.snapshot import LiveSnapshot, SnapshotFeed
from kurs_gateway.stale import StaleIfError
from kurs_gateway.stream_listener import StreamListener

log = logging.getLogger(__name__)

DESCRIPTION = """
Exchange rates as exact decimal strings. Reference data: the European Central Bank's daily
euro foreign exchange reference rates. With base EUR the published figures come back digit for
digit; other bases are cross rates computed in decimal and rounded to 10 significant digits.
Errors are RFC 9457 problem details (`application/problem+json`) naming the offending parameter.
"""


def served_app(settings: GatewaySettings | None = None) -> ASGIApp:
    """The gateway as served: settings (from the environment unless given), logging, telemetry."""
    from kurs_common.logs import setup_logging
    from kurs_common.telemetry import setup_tracing

    settings = settings or GatewaySettings()
    setup_logging("gateway", settings.log_level)
    setup_tracing("kurs-gateway", settings.otel_exporter)
    return create_app(settings)


def create_app(settings: GatewaySettings) -> ASGIApp:
    snapshot = LiveSnapshot(settings.client_queue)
    cache = BodyCache(snapshot, settings.cache_entries, settings.history_cache_seconds, settings.cache_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rates_channel = insecure_channel(settings.rates_address, metrics.service)
        collector_channel = insecure_channel(settings.collector_address, metrics.service)
        validator_channel = insecure_channel(settings.validator_address, metrics.service)
        feed = SnapshotFeed(rates_pb2_grpc.RatesServiceStub(rates_channel), snapshot)
        app.state.rates_stub = rates_pb2_grpc.RatesServiceStub(rates_channel)
        app.state.collector_stub = collector_pb2_grpc.CollectorServiceStub(collector_channel)
        app.state.validator_stub = validator_pb2_grpc.ValidatorServiceStub(validator_channel)
        app.state.feed = feed
        analysis_grpc = None
        if settings.grpc_address:  # AnalysisService over gRPC beside HTTP (grpc_analysis.py)
            analysis_grpc = await grpc_analysis.start(settings, app.state.rates_stub, metrics.service)
        task = asyncio.create_task(feed.run(), name="rates-stream")
        await access.start()
        listener = app.state.stream_listener = None
        if settings.stream_port is not None:  # WS /ws/rates/stream framed natively, own port
            gauge = metrics.websockets.labels(stream.PATH)
            sent = metrics.websocket_messages.labels(stream.PATH)
            listener = StreamListener(app.state, settings, stream_gate, gauge, sent)
            await listener.start()
            app.state.stream_listener = listener
        # Everything built at start (FastAPI, the OpenAPI and GraphQL schemas, protobuf modules:
        # about 180,000 objects) leaves the collector's view: a full collection then scans only
        # what was made since, instead of pausing every request in flight for 50-300 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            if analysis_grpc is not None:
                await analysis_grpc.stop(settings.shutdown_grace_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await fast.close()
            await rates_channel.close()
            await collector_channel.close()
            await validator_channel.close()
            await access.stop()
            log.info("gateway stopped: every shutdown step ran")

    app = FastAPI(title="Kurs", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.snapshot = snapshot
    app.state.cache = cache
    metrics = app.state.metrics = metrics_routes.GatewayMetrics(snapshot, cache, app.state)
    access = app.state.access = Access(settings)
    problems.install(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema["paths"]["/graphql"] = graphql.OPENAPI_PATH  # one route, two methods: described by hand
            app.openapi_schema = problems.document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(rates.router)
    app.include_router(stream.router)
    app.include_router(health.router)
    app.include_router(quality.router)
    app.include_router(compat.router)
    app.include_router(graphql.router)
    app.include_router(runa.router)
    app.include_router(exchangerate_api.router)
    app.include_router(usage_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(graphql_ws.router)
    app.include_router(shadow_router)
    app.include_router(metrics_routes.router)
    app.include_router(dashboard_routes.router)
    app.include_router(analysis_routes.router)
    app.include_router(bulk_routes.router)
    app.include_router(alerts_routes.router)
    alerts_engine.install(app, settings)
    app.state.graphql_schema = graphql.build()
    # /ws/rates/stream ahead of FastAPI routing; history's last good answers through a rates outage
    fast = FastPath(StaleIfError(stream.StreamFront(SeriesFront(app, cache))), cache)
    front: ASGIApp = fast
    app.state.shadow = None
    if settings.shadow_url:
        front = app.state.shadow = Shadow(
            front,
            settings.shadow_url,
            settings.shadow_key,
            settings.shadow_serve,
            settings.shadow_tolerance,
            settings.shadow_timeout_seconds,
            settings.shadow_max_pending,
        )
    front = access.wrap(front)  # keys, scopes, limits and quotas; then the v6 path-key front
    guarded = access.registry is not None or settings.rate_limit_per_second > 0
    # The native stream listener's handshakes pass this same guard down to StreamFront.
    stream_gate = front if guarded else None
    front = BodyReadTimeout(front, settings.body_read_timeout_seconds)
    # Outermost: every request is timed (and traced when an exporter is set), fast path included.
    tracing = settings.otel_exporter != "none"
    # With nothing in between that may refuse a request (keys, limits, shadowing), a cached GET
    # is answered by that outermost front itself: one lookup, two sends, one observation.
    early = None if guarded or settings.shadow_url else fast.answer
    return metrics_routes.HttpMetrics(front, metrics, app.router.routes, tracing, early)
