"""Validator settings (environment prefix KURS_VALIDATOR_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ValidatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KURS_VALIDATOR_", extra="ignore")

    address: str = "127.0.0.1:50052"
    rates_address: str = "127.0.0.1:50051"
    # Accepted rates are forwarded to the rates service in chunks of at most this many.
    forward_batch: int = 10_000
    forward_timeout_seconds: float = 60.0
    log_level: str = "INFO"
    otel_exporter: str = "none"
    shutdown_grace_seconds: float = 5.0
