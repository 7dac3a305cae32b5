"""Rates service settings (environment prefix KURS_RATES_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from kurs_common.settings import GrpcServiceSettings


class RatesSettings(GrpcServiceSettings):
    """Logging, tracing, metrics and shutdown grace: kurs_common.settings.GrpcServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="KURS_RATES_", extra="ignore", populate_by_name=True)

    address: str = "127.0.0.1:50051"
    # sqlite:///relative/path.sqlite3, sqlite:////absolute/path, or postgresql://user@host/db
    database_url: str = Field(
        default="sqlite:///var/kurs.sqlite3",
        validation_alias=AliasChoices("KURS_RATES_DATABASE_URL", "KURS_DATABASE_URL"),
    )
    # redis://host:port/db; empty = no Redis (single replica, in-process fan-out only).
    redis_url: str = Field(
        default="",
        validation_alias=AliasChoices("KURS_RATES_REDIS_URL", "KURS_REDIS_URL"),
    )
    # Every Redis key of this deployment starts with this prefix.
    redis_prefix: str = "kurs:rates:"
    # Entries kept in the Redis stream (a restarted replica's replay window) and change sets
    # kept in memory for StreamRatesRequest.since_sequence.
    redis_stream_maxlen: int = 10_000
    replay_window: int = 1024
    # Apply pending PostgreSQL migrations at start (under an advisory lock). False for replicas
    # that read a standby database; run `python -m kurs_rates migrate` against the primary instead.
    migrate_on_start: bool = True
    # PostgreSQL pool and timeouts (seconds).
    pg_pool_min: int = 1
    pg_pool_max: int = 10
    pg_statement_timeout: float = 5.0
    pg_write_timeout: float = 60.0
    pg_connect_timeout: float = 2.0
    # At shutdown, connections still busy after this long are terminated.
    pg_close_timeout: float = 5.0
    # Embedded SQLite store: how long a statement waits for another connection's lock.
    sqlite_busy_timeout_seconds: float = 5.0
    # IngestRates refuses a rate observed more than this many seconds in the future (clock skew
    # allowance), per item: ItemRejection field "observed_at" (or "date" for its business date).
    max_future_skew_seconds: float = 300.0
    # The series that answers latest, historical and time-series queries without `source=`: the
    # blended reference series (kurs_common.series.BLEND), or one publisher's id ("ecb") to
    # serve that publisher alone.
    reference_source: str = "blend"
    # Live ticks (ListTicks, intraday bars) are kept this many days (each source and currency
    # keeps its newest tick beyond it); 0 keeps them all. Pruned every tick_prune_seconds.
    tick_retention_days: float = 90.0
    tick_prune_seconds: float = 900.0
    # Shared secret of the service-to-service tokens (kurs_common.grpcserver.ServiceAuth): when
    # set, IngestRates takes only calls signed as "validator" (set the validator's
    # KURS_VALIDATOR_SERVICE_SECRET to the same value). Empty: ingest is not authenticated.
    service_secret: str = ""
