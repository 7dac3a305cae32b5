"""Assemble the rates service: store -> latest rates -> queries -> servicers -> gRPC server.

Health (grpc.health.v1): "kurs.rates.v1.RatesService" stays SERVING while the latest snapshot
can be served. Two extra names report the backends:
* "kurs.rates.store": NOT_SERVING while the database is unreachable (ingest answers UNAVAILABLE);
* "kurs.rates.redis": NOT_SERVING while Redis is unreachable (fan-out to other replicas degraded);
  only registered when a Redis URL is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grpc_health.v1 import health_pb2
from prometheus_client import Histogram
from prometheus_client.core import Metric

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_common.grpcserver import RunningServer, ServiceAuth, start_server
from kurs_common.metrics import (
    LAG_BUCKETS,
    MetricsEndpoint,
    ServiceMetrics,
    gauge,
    labelled_gauge,
    start_metrics_endpoint,
)
from kurs_common.timeutil import utcnow
from kurs_rates import series_cache, ticks
from kurs_rates.book import LatestRates
from kurs_rates.ingest import Ingestor
from kurs_rates.ingest_servicer import IngestServicer
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.queries import RateQueries
from kurs_rates.replication import RedisReplication
from kurs_rates.servicer import RatesServicer
from kurs_rates.settings import RatesSettings
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore

log = logging.getLogger(__name__)

# Authorised for the validator only when a service secret is configured.
INGEST_METHODS = "/kurs.rates.v1.RatesIngestService/"

STORE_HEALTH = "kurs.rates.store"
REDIS_HEALTH = "kurs.rates.redis"
HEALTH_INTERVAL = 0.5


def open_store(url: str, settings: RatesSettings | None = None) -> RateStore:
    s = settings or RatesSettings()
    if url.startswith("sqlite:///"):
        return SqliteRateStore(
            Path(url.removeprefix("sqlite:///")), busy_timeout=s.sqlite_busy_timeout_seconds
        )
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresRateStore(
            url,
            min_pool=s.pg_pool_min,
            max_pool=s.pg_pool_max,
            statement_timeout=s.pg_statement_timeout,
            write_timeout=s.pg_write_timeout,
            connect_timeout=s.pg_connect_timeout,
            close_timeout=s.pg_close_timeout,
            apply_migrations=s.migrate_on_start,
        )
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


@dataclass
class RatesServer:
    """A started rates service: store, latest rates, gRPC server, ingestor, Redis fan-out, background
    tasks and metrics endpoint; `stop()` drains the server, then closes the rest."""

    store: RateStore
    book: LatestRates
    grpc: RunningServer
    ingestor: Ingestor
    fanout: RedisReplication | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics: MetricsEndpoint | None = None

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        try:
            for task in self.tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.grpc.stop(grace)
            if self.metrics is not None:
                await self.metrics.stop()
        finally:
            try:
                if self.fanout is not None:
                    await self.fanout.stop()
            finally:
                await self.store.close()


async def _watch_health(
    server: RunningServer, ingestor: Ingestor, store: RateStore, fanout: RedisReplication | None
) -> None:
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    reported: dict[str, int] = {}
    while True:
        store_ok = ingestor.store_healthy
        reachable = await store.reachable()
        if reachable is not None:
            store_ok = reachable
            ingestor.mark_store(store_ok)
        states = {STORE_HEALTH: serving if store_ok else not_serving}
        if fanout is not None:
            states[REDIS_HEALTH] = serving if fanout.healthy else not_serving
        for name, state in states.items():
            if reported.get(name) != state:
                await server.health.set(name, state)
                reported[name] = state
                log.log(
                    logging.INFO if state == serving else logging.WARNING,
                    "health changed",
                    extra={
                        "health_service": name,
                        "status": health_pb2.HealthCheckResponse.ServingStatus.Name(state),
                    },
                )
        await asyncio.sleep(HEALTH_INTERVAL)


def build_metrics(
    book: LatestRates, ingestor: Ingestor, store: RateStore, fanout: RedisReplication | None
) -> tuple[ServiceMetrics, Histogram]:
    """The rates service's metrics: RPCs (interceptor), the latest rates, the store and its pool,
    Redis, and the publication lag (observed -> published), read at scrape time."""
    metrics = ServiceMetrics("rates")
    lag = Histogram(
        "kurs_rates_publish_lag_seconds",
        "Age of each figure when it changed the latest rates (observation -> stored and published)",
        ["kind"],
        registry=metrics.registry,
        buckets=LAG_BUCKETS,
    )

    def collect() -> Iterator[Metric]:
        effective = book.effective()
        yield gauge(
            "kurs_rates_sequence", "Sequence number of the newest published change set", book.sequence
        )
        yield gauge("kurs_rates_latest_currencies", "Currencies in the latest rates", len(effective))
        newest = max((r.observed_at for r in effective.values()), default=None)
        if newest is not None:
            age = (utcnow() - newest).total_seconds()
            yield gauge("kurs_rates_latest_observation_age_seconds", "Age of the newest latest rate", age)
        yield gauge(
            "kurs_rates_write_buffer_rates",
            "Rates acknowledged but not yet stored (always 0: acknowledged only once stored)",
            ingestor.buffered,
        )
        yield gauge("kurs_rates_store_up", "1 while the store takes writes", float(ingestor.store_healthy))
        if fanout is not None:
            yield gauge("kurs_rates_redis_up", "1 while Redis is reachable", float(fanout.healthy))
        pool = getattr(store, "_pool", None)  # PostgreSQL only (asyncpg pool)
        if pool is not None:
            idle = pool.get_idle_size()
            rows = [(["busy"], pool.get_size() - idle), (["idle"], idle)]
            yield labelled_gauge(
                "kurs_rates_store_pool_connections", "Store pool connections", ["state"], rows
            )
            yield gauge("kurs_rates_store_pool_max_connections", "Store pool size limit", pool.get_max_size())

    metrics.add_callback(collect)
    return metrics, lag


async def _measure_publish_lag(book: LatestRates, lag: Histogram) -> None:
    with book.subscribe() as changes:
        while True:
            change = await changes.queue.get()
            now = utcnow()
            for rate in change.rates:
                lag.labels(rate.kind.value).observe(max(0.0, (now - rate.observed_at).total_seconds()))


def sequence_floor() -> int:
    """Where a process without a global counter starts numbering: the wall clock in milliseconds,
    above every number a previous run issued unless it averaged more than one change set per
    millisecond (a change set is at least one committed store write)."""
    return int(time.time() * 1000)


async def start(settings: RatesSettings, store: RateStore | None = None) -> RatesServer:
    store = store or open_store(settings.database_url, settings)
    await store.open()
    try:
        return await _start_on(settings, store)
    except BaseException:
        await store.close()
        raise


async def _start_on(settings: RatesSettings, store: RateStore) -> RatesServer:
    book = LatestRates(settings.replay_window)
    fanout: RedisReplication | None = None
    try:
        book.load(await store.latest_reference(settings.reference_source), await store.latest_live())
        if settings.redis_url:
            fanout = RedisReplication(
                settings.redis_url,
                book,
                prefix=settings.redis_prefix,
                stream_maxlen=settings.redis_stream_maxlen,
            )
            await fanout.start()
        if fanout is None or not fanout.healthy:
            # No global counter to continue from: start above anything a previous run issued.
            book.start_at(sequence_floor())
        # Other replicas may write the same database: trust a cached series month 30 s at most.
        shared = None if fanout is None else series_cache.SHARED_MAX_AGE_SECONDS
        queries = RateQueries(store, book, settings.reference_source, series_max_age=shared)
        book.on_reference_change.append(queries.invalidate)
        ingestor = Ingestor(store, book, queries, settings.reference_source, fanout)
        rates = RatesServicer(queries, book)
        ingest = IngestServicer(ingestor, dt.timedelta(seconds=settings.max_future_skew_seconds))

        def register(server: object) -> list[str]:
            rates_pb2_grpc.add_RatesServiceServicer_to_server(rates, server)
            ingest_pb2_grpc.add_RatesIngestServiceServicer_to_server(ingest, server)
            return [
                rates_pb2.DESCRIPTOR.services_by_name["RatesService"].full_name,
                ingest_pb2.DESCRIPTOR.services_by_name["RatesIngestService"].full_name,
            ]

        metrics, lag = (
            build_metrics(book, ingestor, store, fanout) if settings.metrics_address else (None, None)
        )
        auth = (
            ServiceAuth(settings.service_secret, {INGEST_METHODS: frozenset({"validator"})})
            if settings.service_secret
            else None
        )
        running = await start_server(settings.address, register, metrics, auth)
        await running.health.set(STORE_HEALTH, health_pb2.HealthCheckResponse.SERVING)
        if fanout is not None:
            redis_state = (
                health_pb2.HealthCheckResponse.SERVING
                if fanout.healthy
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await running.health.set(REDIS_HEALTH, redis_state)
        watcher = asyncio.create_task(_watch_health(running, ingestor, store, fanout), name="rates-health")
        tasks = [watcher]
        if settings.tick_retention_days > 0:
            retention = dt.timedelta(days=settings.tick_retention_days)
            prune = ticks.prune_forever(store, retention, settings.tick_prune_seconds)
            tasks.append(asyncio.create_task(prune, name="rates-tick-retention"))
        endpoint: MetricsEndpoint | None = None
        if metrics is not None and lag is not None:
            tasks.append(asyncio.create_task(_measure_publish_lag(book, lag), name="rates-publish-lag"))
            try:
                endpoint = await start_metrics_endpoint(settings.metrics_address, metrics)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await running.stop(0)
                raise
        log.info(
            "rates service ready",
            extra={
                "currencies": len(book.reference),
                "port": running.port,
                "store": type(store).__name__,
                "redis": bool(fanout),
            },
        )
        return RatesServer(store, book, running, ingestor, fanout, tasks, endpoint)
    except BaseException:
        if fanout is not None:
            await fanout.stop()
        raise
