"""Assemble the validator: store -> engine -> channel to rates -> servicer -> gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
from dataclasses import dataclass

import grpc

from kurs.rates.v1 import ingest_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.grpcserver import RunningServer, insecure_channel, start_server
from kurs_validator.engine import ValidationEngine
from kurs_validator.hub import AnomalyHub
from kurs_validator.policy import Policy
from kurs_validator.servicer import ValidatorServicer
from kurs_validator.settings import ValidatorSettings
from kurs_validator.store import Retention, ValidatorStore

log = logging.getLogger(__name__)


@dataclass
class ValidatorService:
    channel: grpc.aio.Channel
    grpc: RunningServer
    servicer: ValidatorServicer
    store: ValidatorStore
    maintenance: asyncio.Task[None]

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        self.maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.maintenance
        await self.grpc.stop(grace)
        await self.channel.close()
        await asyncio.to_thread(self.store.close)


GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Process-wide, for the validator's own process only (its entrypoint calls it).

    The engine keeps a large, long-lived and acyclic state (every source's series) and allocates
    many short-lived objects per observation; with the default thresholds (700, 10, 10) the cyclic
    collector keeps rescanning that state and costs about a third of the validator's CPU time.
    Reference counting still frees everything promptly; only cycles wait longer.
    """
    gc.collect()
    gc.freeze()  # what exists at start (modules, settings) is never garbage
    gc.set_threshold(*GC_THRESHOLDS)


def build_store(settings: ValidatorSettings) -> ValidatorStore:
    return ValidatorStore(
        settings.database_url,
        Retention(
            anomalies=dt.timedelta(days=settings.anomaly_retention_days),
            anomaly_max_rows=settings.anomaly_max_rows,
            live_quality=dt.timedelta(hours=settings.live_quality_retention_hours),
            reference_quality=dt.timedelta(days=settings.reference_quality_retention_days),
        ),
    )


async def _maintain(servicer: ValidatorServicer, interval: float) -> None:
    while True:
        try:
            await servicer.maintain()
        except Exception:
            log.exception("maintenance failed")
        await asyncio.sleep(interval)


async def start(settings: ValidatorSettings) -> ValidatorService:
    store = build_store(settings)
    await asyncio.to_thread(store.open)
    channel = insecure_channel(settings.rates_address)
    servicer = ValidatorServicer(
        ingest_pb2_grpc.RatesIngestServiceStub(channel),
        ValidationEngine(Policy(priority=dict(settings.source_priority))),
        store,
        AnomalyHub(),
        settings.forward_batch,
        settings.forward_timeout_seconds,
    )

    def register(server: grpc.aio.Server) -> list[str]:
        validator_pb2_grpc.add_ValidatorServiceServicer_to_server(servicer, server)
        return [validator_pb2.DESCRIPTOR.services_by_name["ValidatorService"].full_name]

    running = await start_server(settings.address, register)
    task = asyncio.create_task(_maintain(servicer, settings.maintenance_interval_seconds))
    return ValidatorService(channel, running, servicer, store, task)
