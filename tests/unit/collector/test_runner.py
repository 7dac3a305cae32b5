"""The runner: schedules, catch-up after downtime, health of each source."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import pytest

from kurs_collector.breaker import OPEN
from kurs_collector.health import DEGRADED, DOWN, HEALTHY
from kurs_collector.runner import FeedDisabled, FeedRunner
from kurs_collector.state import FeedState, StateStore
from support.fake_exchanges import (
    Blob,
    FakeHttpServer,
    FakeResponse,
    MakeFeed,
    RecordingDeliverer,
    running,
    wait_until,
)

UTC = dt.UTC
NOW = dt.datetime(2025, 1, 15, 18, 0, tzinfo=UTC)  # Wednesday, after the ECB published


class Clock:
    """A fake clock whose sleeps record the wait and then park (the test ends the run)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.waits: list[float] = []
        self.parked = asyncio.Event()

    def __call__(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.parked.set()
        await asyncio.Event().wait()


async def test_catch_up_after_downtime_then_sleep_until_next_publication(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed, state: StateStore
) -> None:
    provider.route(
        "/stats/eurofxref/eurofxref-hist-90d.xml",
        FakeResponse(body=blob("ecb/eurofxref-hist-90d.xml")),
    )
    provider.route("/stats/eurofxref/eurofxref-daily.xml", FakeResponse(body=blob("ecb/eurofxref-daily.xml")))
    state.save("ecb-daily", FeedState(last_day="2025-01-10"))  # the collector was down since Friday
    clock = Clock(NOW)
    feed = make("ecb-daily", provider.url, now=NOW)
    deliverer = RecordingDeliverer()
    collector = FeedRunner([(feed, True)], deliverer, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert collector.refresh("ecb-daily").publications_missed == 3
    collector.start()
    try:
        await asyncio.wait_for(clock.parked.wait(), 10)
    finally:
        await collector.stop()
    # Caught up from the 90-day file (not just today's), one batch per day, oldest first.
    assert [p.path for p in provider.requests] == ["/stats/eurofxref/eurofxref-hist-90d.xml"]
    assert [b[0].day for b in deliverer.batches] == ["2025-01-13", "2025-01-14", "2025-01-15"]
    health = collector.refresh("ecb-daily")
    assert health.state == HEALTHY
    assert health.publications_missed == 0
    assert health.last_day == "2025-01-15"
    assert health.observations_delivered == 15
    assert health.last_observed_at == dt.datetime(2025, 1, 15, 15, 0, tzinfo=UTC)
    # Then it waits for Thursday 16:00 CET.
    assert clock.waits == [21 * 3600]
    assert health.next_run_at == dt.datetime(2025, 1, 16, 15, 0, tzinfo=UTC)


async def test_late_publication_is_polled_again(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed, state: StateStore
) -> None:
    # At 18:00 the daily file still shows yesterday.
    body = blob("ecb/eurofxref-daily.xml").replace(b"2025-01-15", b"2025-01-14")
    provider.route("/stats/eurofxref/eurofxref-daily.xml", FakeResponse(body=body))
    state.save("ecb-daily", FeedState(last_day="2025-01-14"))
    clock = Clock(NOW)
    feed = make("ecb-daily", provider.url, now=NOW, retry_interval_seconds=600)
    async with running([feed], clock=clock, sleep=clock.sleep) as collector:
        await asyncio.wait_for(clock.parked.wait(), 10)
    assert clock.waits == [600]
    assert collector.refresh("ecb-daily").publications_missed == 1


async def test_unreachable_source_is_down(make: MakeFeed) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = Clock(NOW)
    feed = make("boc", f"http://127.0.0.1:{port}", now=NOW, breaker_failures=1)
    async with running([feed], clock=clock, sleep=clock.sleep) as collector:
        await asyncio.wait_for(clock.parked.wait(), 10)
    health = collector.refresh("boc")
    assert health.state == DOWN
    assert health.circuit == OPEN
    assert "ConnectError" in health.last_error
    assert health.consecutive_failures == 1
    assert health.publications_missed == 1
    # The next try waits for the breaker to half-open, not the retry interval.
    assert 0 < clock.waits[0] <= 60


async def test_refused_figures_make_the_source_degraded(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = blob("ecb/eurofxref-daily.xml").replace(b"currency='THB'", b"currency='QQQ'")
    provider.route("/stats/eurofxref/eurofxref-daily.xml", FakeResponse(body=body))
    feed = make("ecb-daily", provider.url, now=NOW)
    deliverer = RecordingDeliverer()
    collector = FeedRunner([(feed, True)], deliverer)  # type: ignore[arg-type]
    result = await collector.run("ecb-daily")
    assert result.observations == 29
    health = collector.health["ecb-daily"]
    assert health.state == DEGRADED
    assert health.figures_refused == 1
    assert "QQQ" in health.last_error


async def test_market_poll_runs_every_interval(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/0/public/Ticker", FakeResponse(body=blob("kraken/ticker.json")))
    feed = make("kraken", provider.url, poll_interval_seconds=0.01)
    deliverer = RecordingDeliverer()
    async with running([feed], deliverer) as collector:
        await deliverer.wait_for(3)
    assert all(len(b) == 11 for b in deliverer.batches[:3])
    await wait_until(lambda: collector.health["kraken"].observations_delivered >= 33)


async def test_a_disabled_network_feed_never_runs_on_demand(provider: FakeHttpServer, make: MakeFeed) -> None:
    feed = make("boc", provider.url)
    collector = FeedRunner([(feed, False)], RecordingDeliverer(), disabled_reasons={"boc": "live is off"})  # type: ignore[arg-type]
    with pytest.raises(FeedDisabled, match="boc is disabled: live is off"):
        await collector.run("boc")
    assert provider.requests == []
    assert collector.health["boc"].state == "disabled"


async def test_catch_up_after_long_downtime_is_bounded(
    provider: FakeHttpServer, make: MakeFeed, state: StateStore
) -> None:
    provider.route(
        "/valet/observations/group/FX_RATES_DAILY/json",
        FakeResponse(body=b'{"seriesDetail":{},"observations":[]}'),
    )
    state.save("boc", FeedState(last_day="2023-06-01"))
    feed = make("boc", provider.url, now=NOW)
    assert [b async for b in feed.collect()] == []
    assert provider.requests[-1].query == {"start_date": "2024-10-14", "end_date": "2025-01-15"}
