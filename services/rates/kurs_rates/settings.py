"""Rates service settings (environment prefix KURS_RATES_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RatesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KURS_RATES_", extra="ignore", populate_by_name=True)

    address: str = "127.0.0.1:50051"
    # sqlite:///relative/path.sqlite3, sqlite:////absolute/path, or postgresql://user@host/db
    database_url: str = Field(
        default="sqlite:///var/kurs.sqlite3",
        validation_alias=AliasChoices("KURS_RATES_DATABASE_URL", "KURS_DATABASE_URL"),
    )
    # The publisher whose daily fixings answer historical queries.
    reference_source: str = "ecb"
    log_level: str = "INFO"
    otel_exporter: str = "none"
    shutdown_grace_seconds: float = 5.0
