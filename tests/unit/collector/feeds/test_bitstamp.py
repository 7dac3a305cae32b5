"""Bitstamp (feeds/bitstamp.py): the REST ticker and the WebSocket order book top.

Recorded: bitstamp/ticker-btcusdt.json (ccxt's static test response, 2024-03-13),
bitstamp/ws-order-book-btcusd.jsonl (crypto-crawler-rs test message, 2022-05-31) and
bitstamp/ws-cryptofeed.jsonl (cryptofeed sample_data, 2022-01-05). Written from
documentation, not recordings: ticker-btcusd.json, ticker-eurusd.json, ws-order-book.jsonl.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from kurs_collector.errors import FeedError
from support.fake_exchanges import (
    Blob,
    FakeHttpServer,
    FakeResponse,
    FakeWsServer,
    MakeFeed,
    RecordingDeliverer,
    drain,
    flatten,
    running,
    wait_until,
)
from support.recordings import MARKET_NOW, Recordings

UTC = dt.UTC
NOW = MARKET_NOW
lines = Recordings("bitstamp").lines


def test_request_url_matches_the_recorded_one(make: MakeFeed) -> None:
    # Compared with the URL ccxt sends for fetchTicker (ccxt/ccxt
    # ts/src/test/static/request/bitstamp.json: https://www.bitstamp.net/api/v2/ticker/btcusdt/):
    # a project's request fixture, not a VCR recording.
    feed = make("bitstamp", "https://www.bitstamp.net", pairs=["BTC/USDT", "EUR/USD"])
    urls = [feed.fetcher.url_for(r) for r in feed.ticker_requests()]
    assert urls == [
        "https://www.bitstamp.net/api/v2/ticker/btcusdt/",
        "https://www.bitstamp.net/api/v2/ticker/eurusd/",
    ]


async def test_recorded_ticker_digit_exact(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v2/ticker/btcusdt/", FakeResponse(body=blob("bitstamp/ticker-btcusdt.json")))
    feed = make("bitstamp", provider.url, pairs=["BTC/USDT"])
    [[obs]] = await drain(feed)
    recorded = json.loads(blob("bitstamp/ticker-btcusdt.json"))
    assert (obs.base, obs.quote) == ("BTC", "USDT")
    assert (obs.bid, obs.ask) == (recorded["bid"], recorded["ask"]) == ("73353", "73367")
    assert obs.value == "73360"
    assert feed.problems == []


async def test_documentation_fixtures(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v2/ticker/btcusd/", FakeResponse(body=blob("bitstamp/ticker-btcusd.json")))
    provider.route("/api/v2/ticker/eurusd/", FakeResponse(body=blob("bitstamp/ticker-eurusd.json")))
    obs = flatten(await drain(make("bitstamp", provider.url, pairs=["BTC/USD", "EUR/USD"])))
    assert {(o.base, o.quote): o.value for o in obs} == {("BTC", "USD"): "97012", ("EUR", "USD"): "1.031605"}


async def test_unreadable_figure_is_reported(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v2/ticker/btcusd/", FakeResponse(body=b'{"bid":"1,5","ask":"73367","last":"1"}'))
    provider.route("/api/v2/ticker/eurusd/", FakeResponse(body=b'{"bid":"1.1","ask":"1.2"}'))
    feed = make("bitstamp", provider.url, pairs=["BTC/USD", "EUR/USD"])
    obs = flatten(await drain(feed))
    assert [(o.base, o.value) for o in obs] == [("EUR", "1.15")]
    assert len(feed.problems) == 1
    assert feed.problems[0].startswith("BTC/USD: btcusd bid:")


async def test_a_reply_that_is_not_a_ticker_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v2/ticker/btcusd/", FakeResponse(body=b'{"status":"error","reason":"x"}'))
    with pytest.raises(FeedError, match="not a ticker"):
        await drain(make("bitstamp", provider.url, pairs=["BTC/USD"]))


# --- WebSocket -----------------------------------------------------------------------------
def test_recorded_order_book_digit_exact(make: MakeFeed) -> None:
    feed = make("bitstamp-ws", "http://unused.invalid", pairs=["BTC/USD"])
    [line] = lines("ws-order-book-btcusd.jsonl")
    data = json.loads(line)["data"]
    [obs] = feed.parse_message(json.loads(line), NOW)
    assert (obs.base, obs.quote) == ("BTC", "USD")
    assert (obs.bid, obs.ask) == (data["bids"][0][0], data["asks"][0][0]) == ("31524.50", "31535.44")
    assert obs.value == "31529.97"
    assert obs.observed_at == dt.datetime(2022, 5, 31, 6, 26, 13, 164007, tzinfo=UTC)  # microtimestamp
    assert feed.problems == []


def test_recorded_acks_and_other_channels(make: MakeFeed) -> None:
    feed = make("bitstamp-ws", "http://unused.invalid", pairs=["BTC/USD"])
    assert [feed.parse_message(json.loads(line), NOW) for line in lines("ws-cryptofeed.jsonl")] == [
        [],
        [],
        [],
    ]
    assert feed.problems == ["diff_order_book_usdtusd: event 'data' ignored (only order_book_ data is read)"]
    half = {"event": "data", "channel": "order_book_btcusd", "data": {"bids": [], "asks": [["1", "1"]]}}
    assert feed.parse_message(half, NOW) == []
    assert feed.problems[-1] == "btcusd: no bids in the book"
    with pytest.raises(FeedError, match="no event"):
        feed.parse_message({"channel": "x"}, NOW)


async def test_stream_and_reconnect_request(make: MakeFeed) -> None:
    book = [("send", line) for line in [*lines("ws-order-book.jsonl"), *lines("ws-order-book-btcusd.jsonl")]]
    first: list[Any] = [
        ("recv",),
        ("recv",),
        *book,
        ("send", '{"event":"bts:request_reconnect","channel":"","data":""}'),
        ("hold",),
    ]
    second: list[Any] = [("recv",), ("recv",), *book, ("hold",)]
    async with FakeWsServer([first, second]) as ws:
        feed = make("bitstamp-ws", "http://unused.invalid", ws_url=ws.url, pairs=["EUR/USD", "BTC/USD"])
        deliverer = RecordingDeliverer()
        async with running([feed], deliverer) as collector:
            await deliverer.wait_for(6)
            await wait_until(lambda: len(ws.received) == 2 and len(ws.received[1]) == 2)
    channels = [m["data"]["channel"] for m in ws.received[1]]
    assert channels == ["order_book_eurusd", "order_book_btcusd"]  # resubscribed
    assert [(o.base, o.quote, o.value) for o in deliverer.batches[0]] == [("EUR", "USD", "1.031605")]
    assert deliverer.batches[1][0].observed_at == dt.datetime(2025, 1, 15, 14, 0, 0, 600000, tzinfo=UTC)
    assert deliverer.batches[2][0].value == "31529.97"  # the recorded message
    assert "asked to reconnect" in collector.health["bitstamp-ws"].last_error
