"""Kraken (feeds/kraken.py): the REST ticker and the WebSocket v2 stream.

Recorded: kraken/ticker-XBTUSDT.json (ccxt's static test response, 2024-03-13). Written from
documentation, not recordings: kraken/ticker.json (the multi-pair fiat poll) and
kraken/ws-ticker.jsonl (v2 messages); no public recording of either was found.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import unquote, urlsplit

import pytest

from kurs_collector.errors import FeedError
from kurs_common.observation import LIVE
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain
from support.recordings import Recordings, replay_stream

UTC = dt.UTC
RECORDED = Recordings("kraken")
raw = RECORDED.raw


def test_request_url_matches_the_recorded_one(make: MakeFeed) -> None:
    # Compared with the URLs ccxt sends (ccxt/ccxt ts/src/test/static/request/kraken.json,
    # fetchTicker and fetchTickers): a project's request fixture, not a VCR recording.
    # ccxt percent-encodes the comma (XBTUSDT%2CETHUSDT); we keep it literal, as Kraken's
    # own documentation links do; both decode to the same query.
    feed = make("kraken", "https://api.kraken.com", pairs=["BTC/USDT"])
    [request] = feed.ticker_requests()
    assert feed.fetcher.url_for(request) == "https://api.kraken.com/0/public/Ticker?pair=XBTUSDT"
    feed = make("kraken", "https://api.kraken.com", pairs=["BTC/USDT", "ETH/USDT"])
    [request] = feed.ticker_requests()
    ours = urlsplit(feed.fetcher.url_for(request))
    recorded = urlsplit("https://api.kraken.com/0/public/Ticker?pair=XBTUSDT%2CETHUSDT")
    assert (ours.path, unquote(ours.query)) == (recorded.path, unquote(recorded.query))
    assert ours.query == "pair=XBTUSDT,ETHUSDT"


async def test_recorded_ticker_digit_exact(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/0/public/Ticker", FakeResponse(body=blob("kraken/ticker-XBTUSDT.json")))
    feed = make("kraken", provider.url, pairs=["BTC/USDT"])
    [batch] = await drain(feed)
    assert provider.requests[-1].query == {"pair": "XBTUSDT"}
    # Kraken answers XBTUSDT under the key XBTUSDT (older pairs: XXBTZUSD); mapped to BTC/USDT.
    ticker = raw("ticker-XBTUSDT.json")["result"]["XBTUSDT"]
    [obs] = batch
    assert (obs.base, obs.quote, obs.kind) == ("BTC", "USDT", LIVE)
    assert (obs.bid, obs.ask) == (ticker["b"][0], ticker["a"][0]) == ("73380.60000", "73380.70000")
    assert obs.value == "73380.65"
    assert feed.problems == []


async def test_documentation_fixture_maps_every_asset_name(
    blob: Blob, provider: FakeHttpServer, make: MakeFeed
) -> None:
    """kraken/ticker.json is written from documentation (XXBTZUSD, ZEURZUSD, USDCHF, ...)."""
    provider.route("/0/public/Ticker", FakeResponse(body=blob("kraken/ticker.json")))
    feed = make("kraken", provider.url)
    [batch] = await drain(feed)
    assert provider.requests[-1].query["pair"].split(",")[:3] == ["XBTUSD", "XBTEUR", "ETHUSD"]
    obs = {(o.base, o.quote): o for o in batch}
    result = raw("ticker.json")["result"]
    names = {
        ("BTC", "USD"): "XXBTZUSD",
        ("BTC", "EUR"): "XXBTZEUR",
        ("ETH", "USD"): "XETHZUSD",
        ("EUR", "USD"): "ZEURZUSD",
        ("GBP", "USD"): "ZGBPZUSD",
        ("USD", "JPY"): "ZUSDZJPY",
        ("USD", "CAD"): "ZUSDZCAD",
        ("USD", "CHF"): "USDCHF",
        ("AUD", "USD"): "AUDUSD",
        ("USDT", "USD"): "USDTZUSD",
        ("USDC", "USD"): "USDCUSD",
    }
    assert set(obs) == set(names)
    for pair, name in names.items():
        assert (obs[pair].bid, obs[pair].ask) == (result[name]["b"][0], result[name]["a"][0])
    assert obs[("EUR", "USD")].value == "1.031605"
    assert {o.observed_at for o in batch} == {dt.datetime(2025, 1, 20, 12, 0, tzinfo=UTC)}  # the clock
    # ETH/EUR is among the default pairs but not in the fixture: reported, not dropped silently.
    assert feed.problems == ["ETH/EUR: not in Kraken's reply"]


async def test_unreadable_figures_are_reported_one_by_one(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = {
        "error": ["EGeneral:Too many requests"],
        "result": {
            "XBTUSDT": {"a": ["73380.70000", "1", "1.000"], "b": ["73380.60000", "1", "1.000"], "x": 1},
            "XETHZUSD": {"a": ["", "1", "1.000"], "b": ["3353.72000", "7", "7.000"]},
            "ZQQQZUSD": {"a": ["1.0", "1", "1.000"], "b": ["0.9", "1", "1.000"]},
        },
    }
    provider.route("/0/public/Ticker", FakeResponse(body=json.dumps(body).encode()))
    feed = make("kraken", provider.url, pairs=["BTC/USDT", "ETH/USD", "EUR/USD"])
    [batch] = await drain(feed)
    assert [(o.base, o.quote, o.value) for o in batch] == [("BTC", "USDT", "73380.65")]
    assert feed.problems[0] == "Kraken warning: EGeneral:Too many requests"
    assert any(p.startswith("XETHZUSD: XETHZUSD ask") for p in feed.problems)
    assert any(p.startswith("ZQQQZUSD: cannot tell base and quote") for p in feed.problems)
    assert feed.problems[-1] == "EUR/USD: not in Kraken's reply"


async def test_error_without_result_fails_the_poll(provider: FakeHttpServer, make: MakeFeed) -> None:
    body = b'{"error":["EQuery:Unknown asset pair"]}'
    provider.route("/0/public/Ticker", FakeResponse(body=body))
    with pytest.raises(FeedError, match="Kraken error: EQuery:Unknown asset pair"):
        await drain(make("kraken", provider.url, pairs=["BTC/USD"]))


# --- WebSocket v2 (fixture written from documentation) ------------------------------------
LINES = RECORDED.lines("ws-ticker.jsonl")


async def test_stream_subscribes_and_parses(make: MakeFeed) -> None:
    pairs = ["EUR/USD", "USD/JPY", "BTC/USD"]
    received, feed, deliverer = await replay_stream(make, "kraken-ws", pairs, LINES, 3)
    assert received[0][0] == {
        "method": "subscribe",
        "params": {"channel": "ticker", "symbol": ["EUR/USD", "USD/JPY", "BTC/USD"]},
    }
    first, second, third = deliverer.batches[:3]
    assert [(o.base, o.quote, o.value, o.bid, o.ask) for o in first] == [
        ("EUR", "USD", "1.031605", "1.03157", "1.03164")
    ]
    assert first[0].observed_at == dt.datetime(2025, 1, 15, 14, 0, 0, 120000, tzinfo=UTC)
    assert [(o.base, o.quote) for o in second] == [("USD", "JPY"), ("EUR", "USD")]
    assert second[0].value == "156.5285"
    assert [(o.base, o.quote) for o in third] == [("BTC", "USD"), ("EUR", "USD")]
    assert feed.problems == []


def test_stream_messages_one_by_one(make: MakeFeed) -> None:
    feed = make("kraken-ws", "http://unused.invalid", pairs=["BTC/USD"])
    now = dt.datetime(2025, 1, 15, 14, tzinfo=UTC)
    for line in [*LINES[:2], LINES[3]]:  # status, subscribe ack, heartbeat
        assert feed.parse_message(json.loads(line), now) == []
    refused = {"error": "Currency pair not supported QQQ/USD", "method": "subscribe", "success": False}
    assert feed.parse_message(refused, now) == []
    two = {
        "channel": "ticker",
        "type": "update",
        "data": [
            {"symbol": "EUR/USD", "bid": "x", "ask": 1},
            {"symbol": "BTC/USD", "bid": 1, "ask": 3, "extra": 1},
        ],
    }
    assert [(o.base, o.quote, o.value) for o in feed.parse_message(two, now)] == [("BTC", "USD", "2")]
    assert feed.parse_message({"channel": "book", "data": []}, now) == []
    assert feed.problems[0] == "subscribe refused: Currency pair not supported QQQ/USD"
    assert feed.problems[1].startswith("EUR/USD: bid:")
    assert feed.problems[2] == "unexpected channel 'book', ignored"
