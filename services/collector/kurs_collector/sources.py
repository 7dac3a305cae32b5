"""Build the network feeds (central banks, markets) from the sources file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kurs_collector.breaker import CircuitBreaker
from kurs_collector.config import ConfigError, SourceConfig, SourcesFile, load_sources
from kurs_collector.feeds.base import Feed, FeedContext
from kurs_collector.feeds.registry import ADAPTERS
from kurs_collector.http import Fetcher
from kurs_collector.settings import CollectorSettings
from kurs_collector.state import StateStore

log = logging.getLogger(__name__)

DEFAULT_SOURCES_FILE = Path("config/sources.toml")
LIVE_OFF = "live collection is off (set KURS_COLLECTOR_LIVE=true or live = true in the sources file)"


@dataclass
class NetworkFeeds:
    feeds: list[tuple[Feed, bool]] = field(default_factory=list)
    disabled_reasons: dict[str, str] = field(default_factory=dict)
    client: httpx.AsyncClient | None = None
    live: bool = False

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def read_sources_file(settings: CollectorSettings) -> SourcesFile | None:
    path = settings.sources_file
    if path is None:
        if not DEFAULT_SOURCES_FILE.exists():
            return None
        path = DEFAULT_SOURCES_FILE
    return load_sources(path)


def make_feed(config: SourceConfig, client: httpx.AsyncClient, state: StateStore) -> Feed:
    cls = ADAPTERS.get(config.adapter)
    if cls is None:
        raise ConfigError(
            f"sources.{config.id}: unknown adapter {config.adapter!r} (known: {', '.join(sorted(ADAPTERS))})"
        )
    fetcher = Fetcher(
        client,
        source=config.id,
        base_url=config.base_url,
        breaker=CircuitBreaker(config.breaker_failures, config.breaker_reset_seconds),
        timeout=config.timeout_seconds,
        retries=config.retries,
        backoff=config.backoff_seconds,
        backoff_max=config.backoff_max_seconds,
        user_agent=config.user_agent,
    )
    feed: Feed = cls(FeedContext(config=config, fetcher=fetcher, state=state))
    return feed


def build_network_feeds(settings: CollectorSettings, sources: SourcesFile | None = None) -> NetworkFeeds:
    sources = sources if sources is not None else read_sources_file(settings)
    if sources is None or not sources.sources:
        return NetworkFeeds()
    live = settings.live if settings.live is not None else sources.live
    state = StateStore(settings.state_dir or sources.state_dir)
    client = httpx.AsyncClient(
        follow_redirects=True,
        trust_env=settings.http_trust_env,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
    )
    out = NetworkFeeds(client=client, live=live)
    for config in sources.sources.values():
        feed = make_feed(config, client, state)
        enabled = live and config.enabled
        if not enabled:
            out.disabled_reasons[config.id] = LIVE_OFF if not live else "enabled = false in the sources file"
        out.feeds.append((feed, enabled))
    log.info(
        "network sources configured",
        extra={"live": live, "enabled": [f.id for f, on in out.feeds if on], "configured": len(out.feeds)},
    )
    return out
