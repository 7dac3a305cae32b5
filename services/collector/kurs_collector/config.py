"""The sources file: which sources run and how (TOML, parsed with tomllib).

Path: KURS_COLLECTOR_SOURCES_FILE (default config/sources.toml). Shape:

    live = false                 # master switch; KURS_COLLECTOR_LIVE overrides it
    state_dir = "var/collector"  # conditional-request validators and progress per feed

    [defaults]                   # applied to every source, each key overridable per source
    timeout_seconds = 10

    [sources.ecb-daily]          # the table name is the feed id
    adapter = "ecb-daily"        # optional, defaults to the table name
    enabled = true
    base_url = "https://www.ecb.europa.eu"

Every other key of a source table is an adapter option (series, pairs, api_key_env, ...).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """The sources file is missing, unreadable or invalid."""


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    adapter: str
    enabled: bool = False
    base_url: str
    ws_url: str = ""
    timeout_seconds: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=1, le=20)
    backoff_seconds: float = Field(1.0, ge=0)
    backoff_max_seconds: float = Field(60.0, ge=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_reset_seconds: float = Field(300.0, ge=0)
    # Scheduled sources: how often to poll again while a due publication has not appeared.
    retry_interval_seconds: float = Field(900.0, gt=0)
    # Market REST sources: seconds between polls.
    poll_interval_seconds: float = Field(10.0, gt=0)
    # Streams: reconnect backoff (exponential with jitter, capped) and the silence after
    # which a connection counts as dead.
    reconnect_seconds: float = Field(1.0, ge=0)
    reconnect_max_seconds: float = Field(60.0, ge=0)
    stale_seconds: float = Field(60.0, gt=0)
    # Streams: how long closing a WebSocket waits for the exchange's close frame.
    ws_close_timeout_seconds: float = Field(1.0, gt=0)
    # How far in the future a source's date may lie (time zones) before it is refused.
    max_future_seconds: float = Field(36 * 3600.0, ge=0)
    user_agent: str = "kurs-collector/0.1 (+https://github.com/kurs)"

    @field_validator("base_url", "ws_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def option(self, name: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(name, default)


class SourcesFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    live: bool = False
    state_dir: Path | None = None
    sources: dict[str, SourceConfig] = Field(default_factory=dict)


def parse_sources(data: dict[str, Any]) -> SourcesFile:
    defaults = data.get("defaults", {})
    raw_sources = data.get("sources", {})
    if not isinstance(defaults, dict) or not isinstance(raw_sources, dict):
        raise ConfigError("[defaults] and [sources.*] must be tables")
    sources: dict[str, SourceConfig] = {}
    for feed_id, table in raw_sources.items():
        if not isinstance(table, dict):
            raise ConfigError(f"sources.{feed_id} must be a table")
        merged = {**defaults, **table, "id": feed_id}
        merged.setdefault("adapter", feed_id)
        try:
            sources[feed_id] = SourceConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(f"sources.{feed_id}: {exc}") from exc
    try:
        return SourcesFile(live=data.get("live", False), state_dir=data.get("state_dir"), sources=sources)
    except ValidationError as exc:
        raise ConfigError(str(exc)) from exc


def load_sources(path: Path) -> SourcesFile:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sources file") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_sources(data)
