"""Coinbase Exchange (feeds/coinbase.py): the REST product ticker and the `ticker` channel.

Recorded: coinbase/ticker-BTC-USDT.json (ccxt's static test response, 2024-03-13) and
coinbase/ws-ticker-BTC-USD.jsonl (crypto-crawler-rs test message, 2022-06-02). Written from
documentation, not recordings: coinbase/ticker-BTC-USD.json, ticker-EUR-USD.json and
ws-ticker.jsonl (no recording of those products found).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from kurs_collector.errors import FeedError
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain
from support.recordings import MARKET_NOW, Recordings, replay_stream

UTC = dt.UTC
NOW = MARKET_NOW
RECORDED = Recordings("coinbase")
raw = RECORDED.raw


def test_request_url_matches_the_recorded_one(make: MakeFeed) -> None:
    # Compared with the URL ccxt sends for fetchTicker (ccxt/ccxt
    # ts/src/test/static/request/coinbaseexchange.json: .../products/BTC-USDT/ticker, on the
    # legacy host api.pro.coinbase.com): a project's request fixture, not a VCR recording.
    feed = make("coinbase", "https://api.exchange.coinbase.com", pairs=["BTC/USDT", "EUR/USD"])
    urls = [feed.fetcher.url_for(r) for r in feed.ticker_requests()]
    assert urls == [
        "https://api.exchange.coinbase.com/products/BTC-USDT/ticker",
        "https://api.exchange.coinbase.com/products/EUR-USD/ticker",
    ]


async def test_recorded_ticker_digit_exact(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USDT/ticker", FakeResponse(body=blob("coinbase/ticker-BTC-USDT.json")))
    feed = make("coinbase", provider.url, pairs=["BTC/USDT"])
    [[obs]] = await drain(feed)
    recorded = raw("ticker-BTC-USDT.json")
    assert (obs.base, obs.quote) == ("BTC", "USDT")
    assert (obs.bid, obs.ask) == (recorded["bid"], recorded["ask"]) == ("73360.34", "73369.19")
    assert obs.value == "73364.765"
    assert obs.observed_at == NOW  # the poll instant, not the ticker's last-trade time
    assert feed.problems == []


async def test_documentation_fixtures(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USD/ticker", FakeResponse(body=blob("coinbase/ticker-BTC-USD.json")))
    provider.route("/products/EUR-USD/ticker", FakeResponse(body=blob("coinbase/ticker-EUR-USD.json")))
    [batch] = await drain(make("coinbase", provider.url, pairs=["EUR/USD", "BTC/USD"]))
    assert {(o.base, o.quote): (o.value, o.bid, o.ask) for o in batch} == {
        ("EUR", "USD"): ("1.03165", "1.0316", "1.0317"),
        ("BTC", "USD"): ("97012.405", "97012.40", "97012.41"),
    }
    assert len({o.observed_at for o in batch}) == 1


async def test_unknown_product_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USD/ticker", FakeResponse(404, b'{"message":"NotFound"}'))
    with pytest.raises(FeedError, match="HTTP 404"):
        await drain(make("coinbase", provider.url, pairs=["BTC/USD"]))


async def test_unreadable_figure_is_reported(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USD/ticker", FakeResponse(body=b'{"ask":"73369.19","bid":null,"x":1}'))
    provider.route("/products/ETH-USD/ticker", FakeResponse(body=b'{"ask":"2","bid":"1"}'))
    feed = make("coinbase", provider.url, pairs=["BTC/USD", "ETH/USD"])
    [batch] = await drain(feed)
    assert [(o.base, o.value) for o in batch] == [("ETH", "1.5")]
    assert feed.problems == ["BTC/USD: BTC-USD bid: None is not a number"]


async def test_a_reply_that_is_not_a_ticker_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USD/ticker", FakeResponse(body=b'{"message":"maintenance"}'))
    with pytest.raises(FeedError, match="not a ticker"):
        await drain(make("coinbase", provider.url, pairs=["BTC/USD"]))


# --- WebSocket -----------------------------------------------------------------------------
def test_recorded_ticker_message_digit_exact(make: MakeFeed) -> None:
    feed = make("coinbase-ws", "http://unused.invalid", pairs=["BTC/USD"])
    [line] = RECORDED.lines("ws-ticker-BTC-USD.jsonl")
    recorded = json.loads(line)
    [obs] = feed.parse_message(json.loads(line), NOW)
    assert (obs.base, obs.quote) == ("BTC", "USD")
    assert (obs.bid, obs.ask) == (recorded["best_bid"], recorded["best_ask"]) == ("29940.90", "29940.91")
    assert obs.value == "29940.905"
    assert obs.observed_at == dt.datetime(2022, 6, 2, 9, 20, 54, 127011, tzinfo=UTC)  # Coinbase's time
    assert obs.fetched_at == NOW
    assert feed.problems == []


def test_control_and_unknown_messages(make: MakeFeed) -> None:
    feed = make("coinbase-ws", "http://unused.invalid", pairs=["BTC/USD"])
    subscriptions = RECORDED.lines("ws-ticker.jsonl")[0]
    assert feed.parse_message(json.loads(subscriptions), NOW) == []
    assert feed.parse_message({"type": "heartbeat", "sequence": 1, "product_id": "BTC-USD"}, NOW) == []
    assert feed.parse_message({"type": "match", "product_id": "BTC-USD"}, NOW) == []
    assert feed.parse_message({"type": "ticker", "product_id": "BTC-USD", "best_bid": ""}, NOW) == []
    assert feed.problems[0] == "unexpected message type 'match', ignored"
    assert feed.problems[1].startswith("BTC-USD: best_bid:")
    with pytest.raises(FeedError, match="error from Coinbase: Failed to subscribe"):
        feed.parse_message({"type": "error", "message": "Failed to subscribe"}, NOW)
    with pytest.raises(FeedError, match="no type"):
        feed.parse_message([1, 2], NOW)


async def test_stream_through_the_runner(make: MakeFeed) -> None:
    lines = [
        *RECORDED.lines("ws-ticker.jsonl"),
        *RECORDED.lines("ws-ticker-BTC-USD.jsonl"),
    ]
    received, _, deliverer = await replay_stream(make, "coinbase-ws", ["EUR/USD", "BTC/USD"], lines, 3)
    assert received[0][0] == {
        "type": "subscribe",
        "product_ids": ["EUR-USD", "BTC-USD"],
        "channels": ["ticker"],
    }
    eur, btc = deliverer.batches[:2]
    assert [(o.base, o.quote, o.value) for o in eur] == [("EUR", "USD", "1.03165")]
    assert [(o.base, o.quote) for o in btc] == [("BTC", "USD"), ("EUR", "USD")]
    assert {o.observed_at for o in btc} == {dt.datetime(2025, 1, 15, 14, 0, 0, 500000, tzinfo=UTC)}
    assert deliverer.batches[2][0].value == "29940.905"  # the recorded message
