"""CollectorService: feed health and on-demand runs."""

from __future__ import annotations

import grpc

from kurs.collector.v1 import collector_pb2, collector_pb2_grpc
from kurs_collector.breaker import CLOSED, HALF_OPEN, OPEN
from kurs_collector.delivery import DeliveryError
from kurs_collector.feeds.base import FeedError
from kurs_collector.health import DEGRADED, DISABLED, DOWN, FAILING, HEALTHY, IDLE, FeedHealth
from kurs_collector.runner import FeedBusy, FeedRunner, UnknownFeed
from kurs_common.timeutil import to_timestamp

_STATES = {
    IDLE: collector_pb2.SOURCE_STATE_IDLE,
    HEALTHY: collector_pb2.SOURCE_STATE_HEALTHY,
    FAILING: collector_pb2.SOURCE_STATE_FAILING,
    DISABLED: collector_pb2.SOURCE_STATE_DISABLED,
    DEGRADED: collector_pb2.SOURCE_STATE_DEGRADED,
    DOWN: collector_pb2.SOURCE_STATE_DOWN,
}
_CIRCUITS = {
    CLOSED: collector_pb2.CIRCUIT_STATE_CLOSED,
    OPEN: collector_pb2.CIRCUIT_STATE_OPEN,
    HALF_OPEN: collector_pb2.CIRCUIT_STATE_HALF_OPEN,
}


def to_proto(h: FeedHealth) -> collector_pb2.SourceHealth:
    return collector_pb2.SourceHealth(
        id=h.id,
        source=h.source,
        description=h.description,
        enabled=h.enabled,
        state=_STATES[h.state],
        last_success_at=to_timestamp(h.last_success_at),
        last_attempt_at=to_timestamp(h.last_attempt_at),
        last_error=h.last_error,
        last_latency_ms=max(0, min(h.last_latency_ms, 2**32 - 1)),
        observations_delivered=h.observations_delivered,
        consecutive_failures=h.consecutive_failures,
        mode=h.mode,
        kind=h.kind,
        endpoint=h.endpoint,
        disabled_reason=h.disabled_reason,
        schedule=h.schedule,
        last_error_at=to_timestamp(h.last_error_at),
        figures_refused=h.figures_refused,
        publications_missed=h.publications_missed,
        circuit=_CIRCUITS.get(h.circuit, collector_pb2.CIRCUIT_STATE_UNSPECIFIED),
        next_run_at=to_timestamp(h.next_run_at),
        last_day=h.last_day,
        last_observed_at=to_timestamp(h.last_observed_at),
    )


class CollectorServicer(collector_pb2_grpc.CollectorServiceServicer):
    def __init__(self, runner: FeedRunner) -> None:
        self.runner = runner

    async def ListSources(
        self, request: collector_pb2.ListSourcesRequest, context: grpc.aio.ServicerContext
    ) -> collector_pb2.ListSourcesResponse:
        return collector_pb2.ListSourcesResponse(sources=[to_proto(h) for h in self.runner.snapshot()])

    async def CollectNow(
        self, request: collector_pb2.CollectNowRequest, context: grpc.aio.ServicerContext
    ) -> collector_pb2.CollectNowResponse:
        try:
            result = await self.runner.run(request.source_id)
        except UnknownFeed:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"source_id: no feed named {request.source_id!r}")
        except FeedBusy as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"source_id: {exc}")
        except (FeedError, DeliveryError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{request.source_id}: {exc}")
        return collector_pb2.CollectNowResponse(
            health=to_proto(self.runner.refresh(request.source_id)),
            observations=result.observations,
            accepted=result.accepted,
            rejected=result.rejected,
        )
