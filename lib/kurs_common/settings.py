"""The settings every Kurs service repeats: logging, tracing, shutdown grace and metrics.

Each service subclasses one of these with its own environment prefix (KURS_RATES_, ...), so
`KURS_RATES_LOG_LEVEL`, `KURS_VALIDATOR_SHUTDOWN_GRACE_SECONDS` and the like keep their names.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Fields of every service process (the gateway's included)."""

    model_config = SettingsConfigDict(extra="ignore")

    log_level: str = "INFO"
    # Traces: "none", "console" or "otlp" (kurs_common.telemetry).
    otel_exporter: str = "none"
    # OTLP/gRPC collector for otel_exporter=otlp ("host:port"); empty: OTEL_EXPORTER_OTLP_ENDPOINT.
    otel_endpoint: str = ""
    # On SIGTERM: stop taking new calls, then give those in flight this long before cancelling them.
    shutdown_grace_seconds: float = 5.0


class GrpcServiceSettings(ServiceSettings):
    """Fields of the gRPC services (rates, validator, collector): metrics on their own port."""

    # Prometheus exposition at http://<metrics_address>/metrics ("0.0.0.0:9464"); empty: off.
    metrics_address: str = ""
