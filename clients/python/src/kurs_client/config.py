"""Client configuration: endpoints per region, timeouts, cache and the ExchangeRate-API fallback.

`ClientConfig.from_env()` reads KURS_CLIENT_* variables (nothing is read at import time):

| variable | example / default |
| --- | --- |
| KURS_CLIENT_ENDPOINTS | `eu-west=rates.eu:50051,us-east=rates.us:50051` (REST: `http://host:port`) |
| KURS_CLIENT_REGION | `eu-west` (its endpoints are tried first) |
| KURS_CLIENT_TRANSPORT | `grpc` (default) or `rest` |
| KURS_CLIENT_TIMEOUT_SECONDS | `5` (whole call, failover included) |
| KURS_CLIENT_CACHE_SECONDS | `1800` |
| KURS_CLIENT_EXCHANGERATE_API_KEY | empty: no ExchangeRate-API fallback |
| KURS_CLIENT_EXCHANGERATE_API_URL | `https://v6.exchangerate-api.com` |
| KURS_CLIENT_API_KEY | empty (REST gateway key, sent as `Authorization: Bearer`) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kurs_client.errors import InvalidArgumentError

ENV_PREFIX = "KURS_CLIENT_"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One rates replica (gRPC `host:port`) or gateway (REST `http://host:port`) in a region."""

    address: str
    region: str = ""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    endpoints: tuple[Endpoint, ...]
    region: str = ""  # the caller's region: its endpoints first, the others in the order given
    transport: Literal["grpc", "rest"] = "grpc"
    timeout: float = 5.0  # deadline of one call, failover included
    attempt_timeout: float = 2.0  # deadline of one attempt on one endpoint
    health_timeout: float = 0.5  # deadline of a grpc.health.v1 Check (REST: GET /readyz)
    health_interval: float = 10.0  # a healthy endpoint is re-checked after this long
    down_seconds: float = 5.0  # an endpoint that failed is skipped this long (then re-checked)
    cache_seconds: float = 1800.0  # fresh cache lifetime (Runa used 30 minutes)
    cache_entries: int = 1024
    stale_seconds: float | None = None  # how old a last good value may be; None: any age
    exchangerate_api_key: str = ""  # empty: no ExchangeRate-API fallback
    exchangerate_api_url: str = "https://v6.exchangerate-api.com"
    api_key: str = ""  # REST: the gateway's key (Authorization: Bearer)
    stream_deadline: float = 300.0  # a stream call is renewed (resumed) after this long
    reconnect_initial: float = 0.05  # stream reconnect backoff, doubled up to reconnect_max
    reconnect_max: float = 2.0
    max_disconnected: float | None = 60.0  # a stream gives up after this long without any endpoint
    retry_attempts: int = 3  # gRPC service-config retryPolicy.maxAttempts (UNAVAILABLE only)
    extra_channel_options: tuple[tuple[str, int | str], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise InvalidArgumentError("endpoints", "at least one endpoint is required")
        if self.transport not in ("grpc", "rest"):
            raise InvalidArgumentError("transport", "must be 'grpc' or 'rest'")
        if self.timeout <= 0 or self.attempt_timeout <= 0:
            raise InvalidArgumentError("timeout", "must be > 0")

    def ordered_endpoints(self) -> tuple[Endpoint, ...]:
        """The caller's region first (stable order within each group)."""
        own = [e for e in self.endpoints if self.region and e.region == self.region]
        return (*own, *(e for e in self.endpoints if e not in own))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ClientConfig:
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(ENV_PREFIX + name, default).strip()

        values: dict[str, object] = {
            "endpoints": parse_endpoints(get("ENDPOINTS")),
            "region": get("REGION"),
            "transport": get("TRANSPORT", "grpc") or "grpc",
            "exchangerate_api_key": get("EXCHANGERATE_API_KEY"),
            "api_key": get("API_KEY"),
        }
        for name, key in (("timeout", "TIMEOUT_SECONDS"), ("cache_seconds", "CACHE_SECONDS")):
            if get(key):
                try:
                    values[name] = float(get(key))
                except ValueError as exc:
                    raise InvalidArgumentError(ENV_PREFIX + key, "must be a number") from exc
        if get("EXCHANGERATE_API_URL"):
            values["exchangerate_api_url"] = get("EXCHANGERATE_API_URL")
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def parse_endpoints(text: str) -> tuple[Endpoint, ...]:
    """`region=address,address,...` (the region part is optional)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        region, sep, address = part.partition("=")
        out.append(Endpoint(address.strip(), region.strip()) if sep else Endpoint(part))
    return tuple(out)
