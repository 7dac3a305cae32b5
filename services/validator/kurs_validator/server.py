"""Assemble the validator: store -> engine -> channel to rates -> servicer -> gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import grpc
from prometheus_client import Counter
from prometheus_client.core import Metric

from kurs.rates.v1 import ingest_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.grpcserver import RunningServer, ServiceToken, insecure_channel, start_server
from kurs_common.metrics import (
    MetricsEndpoint,
    ServiceMetrics,
    attach_metrics_endpoint,
    labelled_counter,
    labelled_gauge,
)
from kurs_common.observation import Observation
from kurs_common.timeutil import utcnow
from kurs_validator.engine import ValidationEngine, history
from kurs_validator.hub import AnomalyHub
from kurs_validator.model import Anomaly, BatchOutcome
from kurs_validator.policy import Policy
from kurs_validator.servicer import ValidatorServicer
from kurs_validator.settings import ValidatorSettings
from kurs_validator.store import Retention, ValidatorStore

log = logging.getLogger(__name__)


@dataclass
class ValidatorServer:
    """A started validator: its gRPC server, servicer, store, maintenance task, channel to rates and
    metrics endpoint; `stop()` drains the server, then closes the rest."""

    channel: grpc.aio.Channel
    grpc: RunningServer
    servicer: ValidatorServicer
    store: ValidatorStore
    maintenance: asyncio.Task[None]
    metrics: MetricsEndpoint | None = None

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        self.maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.maintenance
        await self.grpc.stop(grace)
        if self.metrics is not None:
            await self.metrics.stop()
        await self.channel.close()
        await asyncio.to_thread(self.store.close)


class DurableHoldsEngine(ValidationEngine):
    """The engine whose held figures survive a restart: after every batch that changed them they
    are written to the store (committed before the batch is answered, so before the collector's
    ack), and `restore` puts them back at start."""

    def __init__(self, policy: Policy, store: ValidatorStore) -> None:
        super().__init__(policy)
        self.store = store
        self._persisted: dict[history.SeriesKey, tuple[int, str]] = {}

    def restore(self) -> int:
        count = history.restore_held(self._state, self.store.load_held())
        self._persisted = self._fingerprint()
        return count

    def _fingerprint(self) -> dict[history.SeriesKey, tuple[int, str]]:
        return {
            key: (s.pending.item.time, s.pending.item.obs.value)
            for key, s in self._state.series.items()
            if s.pending is not None
        }

    def process(self, observations: Sequence[Observation], now: dt.datetime) -> BatchOutcome:
        outcome = super().process(observations, now)
        held = self._fingerprint()
        if held != self._persisted:
            try:
                self.store.replace_held(list(history.held_records(self._state).values()))
            except Exception:
                log.exception("could not persist held figures; retried after the next batch")
            else:
                self._persisted = held
        return outcome


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
        busy_timeout=settings.sqlite_busy_timeout_seconds,
    )


async def _maintain(servicer: ValidatorServicer, interval: float) -> None:
    while True:
        try:
            await servicer.maintain()
        except Exception:
            log.exception("maintenance failed")
        await asyncio.sleep(interval)


class CountingHub(AnomalyHub):
    """The anomaly fan-out, also counting every newly stored anomaly by reason, source and kind."""

    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self.counter = counter

    def publish_all(self, anomalies: Iterable[Anomaly]) -> None:
        items = list(anomalies)
        for a in items:
            self.counter.labels(a.reason, a.observation.source, a.observation.kind).inc()
        super().publish_all(items)


def build_metrics(engine: ValidationEngine) -> tuple[ServiceMetrics, CountingHub]:
    """RPCs (interceptor), anomalies as they are stored, and per-source freshness at scrape time."""
    metrics = ServiceMetrics("validator")
    anomalies = Counter(
        "kurs_validator_anomalies",
        "Anomalies stored (rejected observations, flagged sources)",
        ["reason", "source", "kind"],
        registry=metrics.registry,
    )

    def collect() -> Iterator[Metric]:
        now = utcnow()
        states = engine.source_states(now)
        labels = ["source", "kind"]
        yield labelled_gauge(
            "kurs_validator_source_stale",
            "1 when the source's newest observation is older than its publication window",
            labels,
            (((s.source, s.kind), float(s.stale)) for s in states),
        )
        yield labelled_gauge(
            "kurs_validator_source_age_seconds",
            "Age of the source's newest observation",
            labels,
            (((s.source, s.kind), (now - s.last_observed_at).total_seconds()) for s in states),
        )
        yield labelled_gauge(
            "kurs_validator_source_window_seconds",
            "The source's expected publication window",
            labels,
            (((s.source, s.kind), s.window.total_seconds()) for s in states),
        )
        yield labelled_counter(
            "kurs_validator_observations",
            "Observations checked, by outcome",
            [*labels, "outcome"],
            [
                *(((s.source, s.kind, "accepted"), float(s.accepted)) for s in states),
                *(((s.source, s.kind, "rejected"), float(s.rejected)) for s in states),
            ],
        )

    metrics.add_callback(collect)
    return metrics, CountingHub(anomalies)


async def start(settings: ValidatorSettings) -> ValidatorServer:
    store = build_store(settings)
    await asyncio.to_thread(store.open)
    engine = DurableHoldsEngine(Policy(priority=dict(settings.source_priority)), store)
    restored = await asyncio.to_thread(engine.restore)
    if restored:
        log.info("held figures restored", extra={"held": restored})
    metrics, hub = build_metrics(engine) if settings.metrics_address else (None, AnomalyHub())
    token = ServiceToken("validator", settings.service_secret) if settings.service_secret else None
    channel = insecure_channel(settings.rates_address, metrics, token)
    servicer = ValidatorServicer(
        ingest_pb2_grpc.RatesIngestServiceStub(channel),
        engine,
        store,
        hub,
        settings.forward_batch,
        settings.forward_timeout_seconds,
    )

    def register(server: grpc.aio.Server) -> list[str]:
        validator_pb2_grpc.add_ValidatorServiceServicer_to_server(servicer, server)
        return [validator_pb2.DESCRIPTOR.services_by_name["ValidatorService"].full_name]

    running = await start_server(settings.address, register, metrics)
    task = asyncio.create_task(_maintain(servicer, settings.maintenance_interval_seconds))
    return await attach_metrics_endpoint(
        ValidatorServer(channel, running, servicer, store, task), settings.metrics_address, metrics
    )
