"""The StreamFeed machinery of feeds/base.py: batches with the EUR anchor, reconnects,
garbage, silence and stale anchors, through the real client and runner against a local
WebSocket server. The Kraken v2 adapter is the vehicle (its messages: kraken/ws-ticker.jsonl,
written from documentation, not a recording)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from kurs_collector.health import DEGRADED, FAILING, HEALTHY
from kurs_collector.runner import FeedRunner
from support.fake_exchanges import FakeWsServer, MakeFeed, RecordingDeliverer, wait_until

LINES = (
    (Path(__file__).resolve().parents[3] / "fixtures/sources/kraken/ws-ticker.jsonl").read_text().splitlines()
)


def script(*extra: Any) -> list[Any]:
    return [("recv",), *[("send", line) for line in LINES], *extra]


def subscribed_symbols(ws: FakeWsServer, connection: int) -> list[str]:
    message = ws.received[connection][0]
    assert message["method"] == "subscribe"
    assert message["params"]["channel"] == "ticker"
    return list(message["params"]["symbol"])


async def run_stream(
    make: MakeFeed, ws: FakeWsServer, **options: Any
) -> tuple[FeedRunner, RecordingDeliverer]:
    feed = make(
        "kraken-ws",
        "http://unused.invalid",
        ws_url=ws.url,
        pairs=["EUR/USD", "USD/JPY", "BTC/USD"],
        **options,
    )
    deliverer = RecordingDeliverer()
    collector = FeedRunner([(feed, True)], deliverer)  # type: ignore[arg-type]
    collector.start()
    return collector, deliverer


async def test_stream_batches_carry_the_eur_anchor(make: MakeFeed) -> None:
    async with FakeWsServer([script(("hold",))]) as ws:
        collector, deliverer = await run_stream(make, ws)
        try:
            await deliverer.wait_for(3)
        finally:
            await collector.stop()
    assert subscribed_symbols(ws, 0) == ["EUR/USD", "USD/JPY", "BTC/USD"]
    first, second, third = deliverer.batches[:3]
    assert [(o.base, o.quote, o.value, o.bid, o.ask) for o in first] == [
        ("EUR", "USD", "1.031605", "1.03157", "1.03164")
    ]
    assert first[0].observed_at == dt.datetime(2025, 1, 15, 14, 0, 0, 120000, tzinfo=dt.UTC)
    # USD/JPY travels with the latest EUR/USD, both stamped with the USD/JPY tick's time.
    assert [(o.base, o.quote) for o in second] == [("USD", "JPY"), ("EUR", "USD")]
    assert {o.observed_at for o in second} == {dt.datetime(2025, 1, 15, 14, 0, 1, 250000, tzinfo=dt.UTC)}
    assert second[0].value == "156.5285"
    assert [(o.base, o.quote) for o in third] == [("BTC", "USD"), ("EUR", "USD")]
    assert {o.source for o in third} == {"kraken"}
    assert collector.health["kraken-ws"].state == HEALTHY


async def test_reconnects_and_resubscribes_after_the_server_drops_mid_frame(make: MakeFeed) -> None:
    async with FakeWsServer([script(("cut",)), script(("hold",))]) as ws:
        collector, deliverer = await run_stream(make, ws)
        try:
            await deliverer.wait_for(6)
            await wait_until(lambda: len(ws.received) == 2)
        finally:
            await collector.stop()
    health = collector.health["kraken-ws"]
    # Both connections subscribed to the same symbols.
    assert subscribed_symbols(ws, 0) == subscribed_symbols(ws, 1)
    assert health.consecutive_failures == 0
    assert health.state == HEALTHY
    assert "websocket" in health.last_error  # the cut was recorded
    assert health.last_error_at is not None
    # No observation from the half frame: exactly the fixture's 3 priced messages, twice.
    assert len(deliverer.batches) == 6


async def test_garbage_is_reported_and_skipped(make: MakeFeed) -> None:
    garbage = [
        ("recv",),
        ("send", "not json at all {"),
        ("send", json.dumps({"channel": "ticker", "data": [{"symbol": "EUR/USD", "bid": "x", "ask": 1}]})),
        ("send", json.dumps({"channel": "ticker", "data": [{"symbol": "QQQ/USD", "bid": 1, "ask": 1.1}]})),
        ("send", json.dumps({"channel": "ticker", "data": [{"symbol": "EUR/USD", "bid": 0, "ask": 0}]})),
        ("send", json.dumps({"channel": "mystery"})),
        ("send", LINES[2]),
        ("hold",),
    ]
    async with FakeWsServer([garbage]) as ws:
        collector, deliverer = await run_stream(make, ws)
        try:
            await deliverer.wait_for(1)
        finally:
            await collector.stop()
    health = collector.health["kraken-ws"]
    # Only the good EUR/USD tick was delivered.
    assert [[(o.base, o.quote, o.value) for o in b] for b in deliverer.batches] == [
        [("EUR", "USD", "1.031605")]
    ]
    assert health.figures_refused == 5
    assert health.state == HEALTHY
    problems = collector.feeds["kraken-ws"].problems  # type: ignore[attr-defined]
    # Only the undecodable message counts as garbage; the others are per-figure problems.
    assert [p for p in problems if p.startswith("garbage message")] == [
        "garbage message (JSONDecodeError: Expecting value: line 1 column 1 (char 0)): 'not json at all {'"
    ]
    assert any("not a plain decimal" in p for p in problems)
    assert any("'QQQ/USD' is not a BASE/QUOTE pair" in p for p in problems)
    assert any("must be greater than zero" in p for p in problems)
    assert any("unexpected channel 'mystery'" in p for p in problems)


async def test_a_stream_of_garbage_ends_the_connection(make: MakeFeed) -> None:
    noise = [("recv",), *[("send", "\x00garbage")] * 12, ("hold",)]
    async with FakeWsServer([noise, [("recv",), ("hold",)]]) as ws:
        collector, deliverer = await run_stream(make, ws)
        try:
            await wait_until(lambda: len(ws.received) >= 2)
        finally:
            await collector.stop()
    health = collector.health["kraken-ws"]
    assert deliverer.batches == []
    assert "10 garbage messages in a row" in health.last_error
    assert health.state in (FAILING, DEGRADED)


async def test_silent_connection_is_dropped(make: MakeFeed) -> None:
    async with FakeWsServer([[("recv",), ("hold",)]]) as ws:
        collector, _ = await run_stream(make, ws, stale_seconds=0.1)
        try:
            await wait_until(lambda: len(ws.received) >= 2)
        finally:
            await collector.stop()
    assert "no message for 0.1s" in collector.health["kraken-ws"].last_error


async def test_a_stale_eur_anchor_is_not_passed_on_as_fresh(make: MakeFeed) -> None:
    tick = {"channel": "ticker", "type": "update"}
    eur = {
        "symbol": "EUR/USD",
        "bid": "1.03157",
        "ask": "1.03164",
        "timestamp": "2025-01-15T14:00:00.000000Z",
    }
    jpy_soon = {
        "symbol": "USD/JPY",
        "bid": "156.1",
        "ask": "156.2",
        "timestamp": "2025-01-15T14:00:03.000000Z",
    }
    jpy_late = {
        "symbol": "USD/JPY",
        "bid": "156.3",
        "ask": "156.4",
        "timestamp": "2025-01-15T14:10:00.000000Z",
    }
    steps = [
        ("recv",),
        *[("send", json.dumps({**tick, "data": [d]})) for d in (eur, jpy_soon, jpy_late)],
        ("hold",),
    ]
    async with FakeWsServer([steps]) as ws:
        collector, deliverer = await run_stream(make, ws, stale_seconds=60.0)
        try:
            await deliverer.wait_for(3)
        finally:
            await collector.stop()
    _, soon, late = deliverer.batches[:3]
    assert [(o.base, o.quote) for o in soon] == [("USD", "JPY"), ("EUR", "USD")]  # 3 s old: a fine cross
    assert [(o.base, o.quote) for o in late] == [("USD", "JPY")]  # 10 minutes old: left out
