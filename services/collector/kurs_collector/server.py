"""Assemble the collector: feeds -> deliverer (validator channel) -> runner -> gRPC server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
from prometheus_client.core import GaugeMetricFamily, Metric

from kurs.collector.v1 import collector_pb2, collector_pb2_grpc
from kurs_collector.breaker import OPEN
from kurs_collector.delivery import Deliverer
from kurs_collector.feeds.base import Feed
from kurs_collector.feeds.ecb_history import EcbHistoryFeed
from kurs_collector.feeds.replay import ReplayFeed
from kurs_collector.health import DEGRADED, DISABLED, DOWN, FAILING, HEALTHY, IDLE, FeedHealth
from kurs_collector.runner import FeedRunner
from kurs_collector.servicer import CollectorServicer
from kurs_collector.settings import CollectorSettings
from kurs_collector.sources import NetworkFeeds, build_network_feeds
from kurs_common.grpcserver import RunningServer, insecure_channel, start_server
from kurs_common.metrics import (
    MetricsEndpoint,
    ServiceMetrics,
    attach_metrics_endpoint,
    labelled_counter,
    labelled_gauge,
)
from kurs_common.timeutil import utcnow

STATES = (IDLE, HEALTHY, DEGRADED, FAILING, DOWN, DISABLED)


def build_builtin_feeds(settings: CollectorSettings) -> list[tuple[Feed, bool]]:
    """The offline feeds: ecb-history (on by default) and replay (off by default)."""
    return [
        (EcbHistoryFeed(settings.ecb_history_path, settings.batch_size), settings.ecb_history_enabled),
        (
            ReplayFeed(
                settings.ecb_history_path,
                settings.replay_start,
                settings.replay_days_per_second,
                settings.replay_loop,
            ),
            settings.replay_enabled,
        ),
    ]


@dataclass
class CollectorServer:
    """A started collector: its feed runner, gRPC server, channel to the validator and metrics
    endpoint; `stop()` drains the server, then stops the feeds."""

    runner: FeedRunner
    channel: grpc.aio.Channel
    grpc: RunningServer
    network: NetworkFeeds
    metrics: MetricsEndpoint | None = None

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        await self.grpc.stop(grace)
        if self.metrics is not None:
            await self.metrics.stop()
        await self.runner.stop()
        await self.network.aclose()
        await self.channel.close()


def build_metrics(runner: FeedRunner) -> ServiceMetrics:
    """RPCs (interceptors) and every feed's health, freshness and errors, read at scrape time."""
    metrics = ServiceMetrics("collector")
    labels = ["feed", "source"]

    def collect() -> Iterator[Metric]:
        now = utcnow()
        feeds = list(runner.health.values())

        def per_feed(name: str, doc: str, value: Callable[[FeedHealth], float]) -> GaugeMetricFamily:
            return labelled_gauge(name, doc, labels, [((h.id, h.source), float(value(h))) for h in feeds])

        def when(name: str, doc: str, value: Callable[[FeedHealth], dt.datetime | None]) -> GaugeMetricFamily:
            rows = [((h.id, h.source), t) for h in feeds if (t := value(h)) is not None]
            return labelled_gauge(name, doc, labels, [(k, t.timestamp()) for k, t in rows])

        yield labelled_gauge(
            "kurs_collector_source_state",
            "1 for the feed's current state (idle, healthy, degraded, failing, down, disabled)",
            [*labels, "state"],
            [((h.id, h.source, state), float(h.state == state)) for h in feeds for state in STATES],
        )
        yield per_feed("kurs_collector_source_enabled", "1 when the feed may run", lambda h: h.enabled)
        yield when(
            "kurs_collector_source_last_success_timestamp_seconds",
            "Last successful run (Unix time)",
            lambda h: h.last_success_at,
        )
        yield when(
            "kurs_collector_source_last_error_timestamp_seconds",
            "Last error (Unix time)",
            lambda h: h.last_error_at,
        )
        yield when(
            "kurs_collector_source_last_observation_timestamp_seconds",
            "Observation time of the newest figure delivered (Unix time)",
            lambda h: h.last_observed_at,
        )
        yield labelled_gauge(
            "kurs_collector_source_freshness_seconds",
            "Age of the feed's newest observation (observed -> now)",
            labels,
            [((h.id, h.source), (now - t).total_seconds()) for h in feeds if (t := h.last_observed_at)],
        )
        yield per_feed(
            "kurs_collector_source_consecutive_failures",
            "Failed runs in a row",
            lambda h: h.consecutive_failures,
        )
        yield per_feed(
            "kurs_collector_source_circuit_open",
            "1 while the circuit breaker is open",
            lambda h: h.circuit == OPEN,
        )
        yield per_feed(
            "kurs_collector_source_last_latency_seconds",
            "Duration of the last run",
            lambda h: h.last_latency_ms / 1000,
        )
        yield per_feed(
            "kurs_collector_source_publications_missed",
            "Publications due by now but not delivered",
            lambda h: h.publications_missed,
        )
        yield labelled_counter(
            "kurs_collector_source_observations_delivered",
            "Observations acknowledged by the validator",
            labels,
            [((h.id, h.source), float(h.observations_delivered)) for h in feeds],
        )
        yield labelled_counter(
            "kurs_collector_source_figures_refused",
            "Figures or messages the collector refused",
            labels,
            [((h.id, h.source), float(h.figures_refused)) for h in feeds],
        )

    metrics.add_callback(collect)
    return metrics


async def start(settings: CollectorSettings, feeds: list[tuple[Feed, bool]] | None = None) -> CollectorServer:
    channel = insecure_channel(settings.validator_address)
    deliverer = Deliverer.for_settings(channel, settings)
    if feeds is None:
        network = build_network_feeds(settings)
        feeds = [*build_builtin_feeds(settings), *network.feeds]
    else:
        network = NetworkFeeds()
    runner = FeedRunner(feeds, deliverer, disabled_reasons=network.disabled_reasons)
    servicer = CollectorServicer(runner)

    def register(server: grpc.aio.Server) -> list[str]:
        collector_pb2_grpc.add_CollectorServiceServicer_to_server(servicer, server)
        return [collector_pb2.DESCRIPTOR.services_by_name["CollectorService"].full_name]

    metrics = build_metrics(runner) if settings.metrics_address else None
    running = await start_server(settings.address, register, metrics)
    service = CollectorServer(runner, channel, running, network)
    await attach_metrics_endpoint(service, settings.metrics_address, metrics)
    if settings.autostart:
        runner.start()
    return service
