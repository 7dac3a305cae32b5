"""Dependencies the routes receive through FastAPI's Depends (all opened by the app's lifespan)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from graphql import GraphQLSchema
from starlette.requests import HTTPConnection as Request

from kurs.collector.v1 import collector_pb2_grpc
from kurs.rates.v1 import rates_pb2_grpc
from kurs.validator.v1 import validator_pb2_grpc
from kurs_gateway.fastpath import BodyCache
from kurs_gateway.keys.access import Access
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot, SnapshotFeed

if TYPE_CHECKING:
    from kurs_gateway.alerts.engine import AlertEngine
    from kurs_gateway.routes.metrics import GatewayMetrics


def snapshot(request: Request) -> LiveSnapshot:
    value: LiveSnapshot = request.app.state.snapshot
    return value


def cache(request: Request) -> BodyCache:
    value: BodyCache = request.app.state.cache
    return value


def rates_stub(request: Request) -> rates_pb2_grpc.RatesServiceStub:
    value: rates_pb2_grpc.RatesServiceStub = request.app.state.rates_stub
    return value


def collector_stub(request: Request) -> collector_pb2_grpc.CollectorServiceStub:
    value: collector_pb2_grpc.CollectorServiceStub = request.app.state.collector_stub
    return value


def settings(request: Request) -> GatewaySettings:
    value: GatewaySettings = request.app.state.settings
    return value


def feed(request: Request) -> SnapshotFeed:
    value: SnapshotFeed = request.app.state.feed
    return value


def feed_if_open(request: Request) -> SnapshotFeed | None:
    """The snapshot feed, or None before the lifespan opened it (the dashboard shows that)."""
    value: SnapshotFeed | None = getattr(request.app.state, "feed", None)
    return value


def alerts(request: Request) -> AlertEngine | None:
    """The alert engine, or None when alerts are off (KURS_GATEWAY_ALERTS_DATABASE_URL unset)."""
    value: AlertEngine | None = getattr(request.app.state, "alerts", None)
    return value


def validator_stub(request: Request) -> validator_pb2_grpc.ValidatorServiceStub:
    value: validator_pb2_grpc.ValidatorServiceStub = request.app.state.validator_stub
    return value


def graphql_schema(request: Request) -> GraphQLSchema:
    value: GraphQLSchema = request.app.state.graphql_schema
    return value


def access(request: Request) -> Access:
    value: Access = request.app.state.access
    return value


def metrics(request: Request) -> GatewayMetrics:
    value: GatewayMetrics = request.app.state.metrics
    return value


# The aliases routes declare their parameters with (one place; every router imports them here).
Snapshot = Annotated[LiveSnapshot, Depends(snapshot)]
Cache = Annotated[BodyCache, Depends(cache)]
Stub = Annotated[rates_pb2_grpc.RatesServiceStub, Depends(rates_stub)]
Settings = Annotated[GatewaySettings, Depends(settings)]
