"""The fetch layer: conditional requests, retries with backoff, the circuit breaker."""

from __future__ import annotations

import datetime as dt
import socket

import httpx
import pytest

from kurs_collector.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from kurs_collector.errors import FeedError
from kurs_collector.state import StateStore
from support.fake_exchanges import (
    Blob,
    FakeHttpServer,
    FakeRequest,
    FakeResponse,
    MakeFeed,
    drain,
    flatten,
    http_date,
)

DAILY = "/stats/eurofxref/eurofxref-daily.xml"
# Just after the 2025-01-15 publication: nothing to catch up.
AFTER_15TH = dt.datetime(2025, 1, 15, 18, 0, tzinfo=dt.UTC)


def refused_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_etag_makes_the_second_fetch_conditional(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-daily.xml")
    provider.route(DAILY, FakeResponse(body=body, headers={"ETag": '"v1"'}))
    feed = make("ecb-daily", provider.url, now=AFTER_15TH)
    assert len(flatten(await drain(feed))) == 30
    assert "if-none-match" not in provider.requests[0].headers
    assert flatten(await drain(feed)) == []  # 304: nothing new
    assert provider.requests[1].headers["if-none-match"] == '"v1"'
    assert feed.fetcher.breaker.state == CLOSED


async def test_last_modified_makes_the_second_fetch_conditional(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    stamp = http_date(1_736_953_200)
    provider.route(
        DAILY, FakeResponse(body=blob("ecb/eurofxref-daily.xml"), headers={"Last-Modified": stamp})
    )
    feed = make("ecb-daily", provider.url, now=AFTER_15TH)
    await drain(feed)
    assert flatten(await drain(feed)) == []
    assert provider.requests[1].headers["if-modified-since"] == stamp


async def test_validators_are_kept_only_after_delivery(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed, state: StateStore
) -> None:
    """A run interrupted before its batches were delivered fetches unconditionally again."""
    provider.route(DAILY, FakeResponse(body=blob("ecb/eurofxref-daily.xml"), headers={"ETag": '"v1"'}))
    feed = make("ecb-daily", provider.url, now=AFTER_15TH)
    batches = feed.collect()
    first = await anext(batches)
    assert len(first) == 30
    await batches.aclose()  # "crash" before acknowledging
    assert state.get("ecb-daily").validators == {}
    assert state.get("ecb-daily").last_day is None
    assert len(flatten(await drain(feed))) == 30  # fetched and yielded again
    assert "if-none-match" not in provider.requests[1].headers
    assert state.get("ecb-daily").last_day == "2025-01-15"


async def test_retries_with_backoff_then_succeeds(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    answers = [FakeResponse(503, b"busy"), FakeResponse(body=blob("ecb/eurofxref-daily.xml"))]

    def flaky(request: FakeRequest) -> FakeResponse:
        return answers.pop(0)

    provider.route(DAILY, flaky)
    feed = make("ecb-daily", provider.url, retries=3)
    assert len(flatten(await drain(feed))) == 30
    assert len(provider.requests) == 2


async def test_gives_up_after_the_configured_attempts(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(DAILY, FakeResponse(500, b"oops"))
    feed = make("ecb-daily", provider.url, retries=3)
    with pytest.raises(FeedError, match=r"HTTP 500 .*3 attempts"):
        await drain(feed)
    assert len(provider.requests) == 3


async def test_client_errors_are_not_retried(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("ecb-daily", provider.url, retries=3)
    with pytest.raises(FeedError, match="HTTP 404"):
        await drain(feed)
    assert len(provider.requests) == 1


async def test_refused_connection_opens_the_circuit(make: MakeFeed) -> None:
    feed = make("ecb-daily", f"http://127.0.0.1:{refused_port()}", breaker_failures=2)
    for _ in range(2):
        with pytest.raises(FeedError, match="ConnectError"):
            await drain(feed)
    assert feed.breaker.state == OPEN
    with pytest.raises(FeedError, match="circuit open"):
        await drain(feed)


async def test_timeout_is_an_error(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route(DAILY, FakeResponse(body=b"<x/>", delay=0.5))
    feed = make("ecb-daily", provider.url, timeout_seconds=0.05, retries=1)
    with pytest.raises(FeedError, match="timed out"):
        await drain(feed)


def test_breaker_half_opens_after_the_reset_time() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.record_failure()
    assert breaker.state == OPEN
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.state == HALF_OPEN
    assert breaker.allow()
    breaker.record_failure()  # the trial failed: open again at once
    assert breaker.state == OPEN
    now[0] = 20.0
    breaker.record_success()
    assert breaker.state == CLOSED


async def test_user_agent_and_no_proxy_leak(
    blob: Blob, provider: FakeHttpServer, http_client: httpx.AsyncClient
) -> None:
    provider.route(DAILY, FakeResponse(body=blob("ecb/eurofxref-daily.xml")))
    from kurs_collector.http import Fetcher, Request

    fetcher = Fetcher(
        http_client,
        source="t",
        base_url=provider.url + "/",
        breaker=CircuitBreaker(),
        timeout=1,
        retries=1,
        backoff=0,
        backoff_max=0,
        user_agent="kurs-test",
    )
    payload = await fetcher.fetch(Request(DAILY))
    assert payload is not None
    assert payload.url == f"{provider.url}{DAILY}"
    assert provider.requests[0].headers["user-agent"] == "kurs-test"
