"""Gateway settings (environment prefix KURS_GATEWAY_)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from kurs_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Logging, tracing and shutdown grace: kurs_common.settings.ServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="KURS_GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8000
    # The HTTP server (README "The gateway's HTTP server", docs/benchmarks.md 2026-12-02 (2)):
    # granian (Rust HTTP/1.1 and WebSocket framing) by default; uvicorn is kept as a fallback.
    # `workers` > 1 runs that many processes sharing the port, each with its own rates stream,
    # cache and metrics (granian only).
    server: Literal["granian", "uvicorn"] = "granian"
    workers: int = Field(default=1, ge=1, le=64)
    # The native stream listener (stream_listener.py): WS /ws/rates/stream on its own port, on
    # `host`, framed by the gateway itself instead of the HTTP server (10,000 clients without
    # starving HTTP: docs/benchmarks.md). The workers of one gateway share it (SO_REUSEPORT); a
    # second gateway on a taken port fails at start. Empty = off;
    # 0 = a free port chosen at start (tests; with one worker).
    stream_port: int | None = Field(default=8001, ge=0, le=65535)
    # While the WebSocket broadcaster writes, the GIL switch interval of the process (Python's
    # is 5 ms, kept otherwise): under granian every request reaches the loop from a Rust thread
    # that needs the GIL, and waited up to 5 ms per hand-over during a broadcast (/rates/latest
    # p99 50-73 ms with 10,000 native stream clients; 3.8-5.1 ms with 0.25 ms). Not for the whole
    # process: /rates/latest alone loses 8 % throughput at 0.25 ms (docs/benchmarks.md).
    switch_interval_seconds: float = Field(default=0.00025, gt=0, le=0.1)
    # Edge limits (slowloris, oversized headers). A request's head (request line and headers)
    # must arrive within `header_read_timeout_seconds` and fit in `max_header_bytes` (else 431 or
    # the connection is closed); each chunk of a request body must arrive within
    # `body_read_timeout_seconds` (else 408); an idle keep-alive connection is closed after
    # `keep_alive_timeout_seconds` (uvicorn only: granian keeps it until the header timeout).
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    max_header_bytes: int = Field(default=65536, ge=8192, le=16 * 1024 * 1024)
    body_read_timeout_seconds: float = Field(default=30.0, gt=0)
    keep_alive_timeout_seconds: float = Field(default=5.0, gt=0)
    rates_address: str = "127.0.0.1:50051"
    collector_address: str = "127.0.0.1:50053"
    validator_address: str = "127.0.0.1:50052"
    # The gRPC analysis listener (kurs.analysis.v1.AnalysisService, grpc_analysis.py), e.g.
    # 127.0.0.1:50055; empty = off. Every granian worker binds it (SO_REUSEPORT). No API keys.
    grpc_address: str = ""
    # Deadline for a gRPC call made on behalf of one HTTP request.
    upstream_timeout_seconds: float = 5.0
    # Readiness fails once the rates stream has been down this long (latest rates may be stale).
    stream_grace_seconds: float = 10.0
    # WebSocket: idle heartbeat interval, and per-client queue before a resync snapshot.
    heartbeat_seconds: float = 15.0
    client_queue: int = 256
    # Prebuilt response bodies kept in memory (latest: until the next change; history: also by age).
    cache_entries: int = 4096
    cache_bytes: int = 64 * 1024 * 1024  # all cached bodies together; a body over 1 MiB is not cached
    history_cache_seconds: float = 60.0
    # Optional API keys (JSON list, e.g. '["k1","k2"]'); empty = no authentication.
    api_keys: list[str] = []
    # Optional rate limit per client (API key, else IP): requests per second and burst; 0 = off.
    rate_limit_per_second: float = 0.0
    rate_limit_burst: int = 100
    # ExchangeRate-API v6 compatibility (/v6/...): requests per key per period (counted per
    # gateway process), the day of the month a period starts, keys answered `inactive-account`,
    # and the links its answers carry.
    v6_plan_quota: int = 1_000_000
    v6_quota_refresh_day: int = 1
    v6_inactive_keys: list[str] = []
    v6_documentation_url: str = "/docs"
    v6_terms_url: str = "/docs"
    v6_provider_url: str = "/"
    # A/B shadowing of the v6 routes: the other side's base URL (e.g. https://v6.example/) and its
    # key; which side's answer is served; the relative divergence tolerated; the other side's
    # deadline; how many comparisons may be in flight at once (more are skipped and counted).
    shadow_url: str = ""
    shadow_key: str = ""
    shadow_serve: Literal["kurs", "upstream"] = "kurs"
    shadow_tolerance: Decimal = Decimal("0.0001")
    shadow_timeout_seconds: float = 2.0
    shadow_max_pending: int = 32
    # Alerts (#12): the rules and delivery outbox database (sqlite:///path for one gateway,
    # postgresql://... shared by several; empty = alerts off), how often a gateway on a shared
    # database re-reads the rules others changed, rules per API key, and webhook delivery:
    # deadline per attempt, attempts before the dead-letter list, and the backoff between
    # attempts (base x 2^(n-1), capped, jittered).
    alerts_database_url: str = ""
    alerts_refresh_seconds: float = 2.0
    alerts_max_rules_per_key: int = 1000
    alerts_webhook_timeout_seconds: float = 5.0
    alerts_max_attempts: int = 8
    alerts_retry_base_seconds: float = 1.0
    alerts_retry_max_seconds: float = 300.0
    # Hosts a webhook may point at (JSON list; "*" = any). Loopback only unless configured.
    alerts_webhook_hosts: list[str] = ["127.0.0.1", "localhost", "::1"]
    # Managed API keys (README "Keys and quotas"): "keys" requires a key on every request but the
    # health and docs paths (static api_keys stay accepted beside them); "off" keeps the static list.
    auth: Literal["off", "keys"] = "off"
    # Where keys are stored (hashed): sqlite:///path or postgresql://... (KURS_DATABASE_URL, the
    # rates' database, when set); Redis shares quotas and rate limits between gateways (empty:
    # counted in this process).
    database_url: str = Field(
        default="sqlite:///var/gateway.sqlite3",
        validation_alias=AliasChoices("KURS_GATEWAY_DATABASE_URL", "KURS_DATABASE_URL"),
    )
    redis_url: str = Field(
        default="", validation_alias=AliasChoices("KURS_GATEWAY_REDIS_URL", "KURS_REDIS_URL")
    )
    redis_prefix: str = "kurs:gateway:"
    # How often each gateway re-reads changed keys (revocations take effect within this).
    keys_refresh_seconds: float = 2.0
    # Most requests per key a gateway admits before its counts reach Redis (a key's own batch is
    # its smallest limit / 32, at most this; overshoot <= gateways x batch), and the longest wait
    # before they are sent.
    limit_batch: int = 256
    limit_sync_seconds: float = 0.1
    # Scopes of the static api_keys; wrong keys tolerated per client address (per second, burst).
    static_key_scopes: list[str] = ["read", "stream", "bulk", "alerts"]
    failed_auth_per_second: float = 1.0
    failed_auth_burst: int = 20

    @field_validator("stream_port", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
