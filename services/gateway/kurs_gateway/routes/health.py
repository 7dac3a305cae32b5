"""Liveness, readiness and per-source health."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from google.protobuf.json_format import MessageToDict
from starlette.responses import Response

from kurs.collector.v1 import collector_pb2, collector_pb2_grpc
from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_gateway import deps, views
from kurs_gateway.params import only
from kurs_gateway.problems import problem
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot, SnapshotFeed

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[Depends(only())])
async def healthz() -> Response:
    """Liveness: the process answers."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz", dependencies=[Depends(only())])
async def readyz(
    snapshot: Annotated[LiveSnapshot, Depends(deps.snapshot)],
    feed: Annotated[SnapshotFeed, Depends(deps.feed)],
    settings: Annotated[GatewaySettings, Depends(deps.settings)],
) -> Response:
    """Readiness: the live snapshot is loaded and the rates stream is connected.

    A stream that dropped is given `stream_grace_seconds` to reconnect (a rates restart) before
    the gateway reports itself unready, so a load balancer or health-checked DNS moves traffic
    to a gateway whose latest rates are still current.
    """
    if not snapshot.ready or not snapshot.entries:
        return problem(503, "latest rates not loaded yet")
    if not feed.connected and time.monotonic() - feed.disconnected_at > settings.stream_grace_seconds:
        return problem(503, "the rates stream is down; latest rates may be stale")
    body: dict[str, Any] = {
        "status": "ready" if feed.connected else "degraded",
        "stream_connected": feed.connected,
        "sequence": snapshot.sequence,
        "date": snapshot.day,
        "currencies": len(snapshot.entries),
    }
    return Response(views.dumps(body), media_type="application/json")


@router.get("/sources", dependencies=[Depends(only())])
async def sources(
    stub: Annotated[collector_pb2_grpc.CollectorServiceStub, Depends(deps.collector_stub)],
    rates: Annotated[rates_pb2_grpc.RatesServiceStub, Depends(deps.rates_stub)],
    settings: Annotated[GatewaySettings, Depends(deps.settings)],
) -> Response:
    """Per-feed health as the collector reports it (last success, last error, latency, state),
    and every publisher with stored figures: the currencies it publishes and their first and
    last dates (what `source=` accepts on the rate routes)."""
    health, published = await asyncio.gather(
        stub.ListSources(collector_pb2.ListSourcesRequest(), timeout=settings.upstream_timeout_seconds),
        rates.ListPublishers(rates_pb2.ListPublishersRequest(), timeout=settings.upstream_timeout_seconds),
    )
    body = MessageToDict(health, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    body["publishers"] = [
        {
            "source": p.source,
            "first_date": p.first_date,
            "last_date": p.last_date,
            "currencies": {
                c.code: {"first_date": c.first_date, "last_date": c.last_date} for c in p.currencies
            },
        }
        for p in published.publishers
    ]
    return Response(views.dumps(body), media_type="application/json")
