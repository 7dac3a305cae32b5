"""Collector unit fixtures: a local fake provider (HTTP) and feeds built on the real fetcher."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kurs_collector.config import SourceConfig
from kurs_collector.feeds.base import HttpFeed, MarketFeed
from kurs_collector.feeds.stream import StreamFeed
from kurs_collector.sources import make_feed
from kurs_collector.state import StateStore
from support.fake_exchanges import Blob, FakeHttpServer, MakeFeed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"
# The default "now" of the feeds under test: after every fixture's dates (January 2025).
NOW = dt.datetime(2025, 1, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def blob() -> Blob:
    """blob("ecb/eurofxref-daily.xml") -> the bytes of tests/fixtures/sources/<name>."""

    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read


@pytest.fixture
async def provider() -> AsyncIterator[FakeHttpServer]:
    async with FakeHttpServer() as server:
        yield server


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def state() -> StateStore:
    return StateStore(None)


def source_config(adapter: str, base_url: str, **options: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "id": options.pop("id", adapter),
        "adapter": adapter,
        "enabled": True,
        "base_url": base_url,
        "timeout_seconds": 2.0,
        "retries": 2,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "breaker_failures": 3,
        "breaker_reset_seconds": 60.0,
        "reconnect_seconds": 0.01,
        "reconnect_max_seconds": 0.05,
        "stale_seconds": 5.0,
    }
    values.update(options)
    return SourceConfig.model_validate(values)


@pytest.fixture
def make(http_client: httpx.AsyncClient, state: StateStore) -> MakeFeed:
    """make("ecb-daily", base_url, now=..., **options) -> the real feed with a fixed clock."""

    def build(adapter: str, base_url: str, *, now: dt.datetime = NOW, **options: Any) -> Any:
        feed = make_feed(source_config(adapter, base_url, **options), http_client, state)
        assert isinstance(feed, HttpFeed | MarketFeed | StreamFeed)
        feed.ctx.clock = lambda: now
        return feed

    return build
