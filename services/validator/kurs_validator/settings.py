"""Validator settings (environment prefix KURS_VALIDATOR_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kurs_common.settings import GrpcServiceSettings


class ValidatorSettings(GrpcServiceSettings):
    """Logging, tracing, metrics and shutdown grace: kurs_common.settings.GrpcServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="KURS_VALIDATOR_", extra="ignore")

    address: str = "127.0.0.1:50052"
    rates_address: str = "127.0.0.1:50051"
    # Accepted rates are forwarded to the rates service in chunks of at most this many.
    forward_batch: int = 10_000
    forward_timeout_seconds: float = 60.0
    # Shared secret of the service-to-service tokens (kurs_common.grpcserver.ServiceToken): when
    # set, calls to the rates service carry a token signed as "validator". Empty: no token.
    service_secret: str = ""

    # Anomalies and quality records: sqlite:///relative/path, sqlite:////absolute/path or sqlite:///:memory:
    database_url: str = "sqlite:///var/validator.sqlite3"
    # How long a statement on that file waits for another connection's lock.
    sqlite_busy_timeout_seconds: float = 30.0
    # Source priority in the weighted median (JSON object in the environment); unlisted sources weigh 1.
    source_priority: dict[str, float] = {"ecb": 3.0}
    # Retention of what the store keeps (docs/validation.md).
    anomaly_retention_days: float = 90.0
    anomaly_max_rows: int = 1_000_000
    live_quality_retention_hours: float = 48.0
    reference_quality_retention_days: float = 40 * 366.0
    # How often stale sources are looked for and the retention rules applied.
    maintenance_interval_seconds: float = 60.0
