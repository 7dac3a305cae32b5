"""Assemble the collector: feeds -> deliverer (validator channel) -> runner -> gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from kurs.collector.v1 import collector_pb2, collector_pb2_grpc
from kurs.validator.v1 import validator_pb2_grpc
from kurs_collector.delivery import Deliverer
from kurs_collector.feeds.base import Feed
from kurs_collector.feeds.ecb_history import EcbHistoryFeed
from kurs_collector.feeds.replay import ReplayFeed
from kurs_collector.runner import Collector
from kurs_collector.servicer import CollectorServicer
from kurs_collector.settings import CollectorSettings
from kurs_collector.sources import NetworkFeeds, build_network_feeds
from kurs_common.grpcserver import RunningServer, insecure_channel, start_server


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


def build_feeds(settings: CollectorSettings) -> list[tuple[Feed, bool]]:
    return build_builtin_feeds(settings)


@dataclass
class CollectorService:
    collector: Collector
    channel: grpc.aio.Channel
    grpc: RunningServer
    network: NetworkFeeds

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        await self.grpc.stop(grace)
        await self.collector.stop()
        await self.network.aclose()
        await self.channel.close()


async def start(
    settings: CollectorSettings, feeds: list[tuple[Feed, bool]] | None = None
) -> CollectorService:
    channel = insecure_channel(settings.validator_address)
    deliverer = Deliverer(
        validator_pb2_grpc.ValidatorServiceStub(channel),
        attempts=settings.delivery_attempts,
        backoff=settings.delivery_backoff_seconds,
        backoff_max=settings.delivery_backoff_max_seconds,
        timeout=settings.delivery_timeout_seconds,
    )
    if feeds is None:
        network = build_network_feeds(settings)
        feeds = [*build_builtin_feeds(settings), *network.feeds]
    else:
        network = NetworkFeeds()
    collector = Collector(feeds, deliverer, disabled_reasons=network.disabled_reasons)
    servicer = CollectorServicer(collector)

    def register(server: grpc.aio.Server) -> list[str]:
        collector_pb2_grpc.add_CollectorServiceServicer_to_server(servicer, server)
        return [collector_pb2.DESCRIPTOR.services_by_name["CollectorService"].full_name]

    running = await start_server(settings.address, register)
    if settings.autostart:
        collector.start()
    return CollectorService(collector, channel, running, network)
