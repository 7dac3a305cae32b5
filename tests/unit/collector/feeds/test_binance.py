"""Binance spot (feeds/binance.py): the REST book ticker and the `@bookTicker` streams.

Recorded: binance/ws-bookTicker-BTCUSDT.jsonl (crypto-crawler-rs test message, 2022) and
binance/ws-cryptofeed.jsonl (cryptofeed sample_data, 2021-08-14). Written from documentation,
not recordings: binance/bookTicker.json (REST) and binance/ws-bookTicker.jsonl; no public
recording of a REST bookTicker reply for these symbols was found.
"""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import pytest

from kurs_collector.errors import FeedError
from support.fake_exchanges import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain, flatten
from support.recordings import MARKET_NOW, Recordings, replay_stream

NOW = MARKET_NOW
lines = Recordings("binance").lines


def test_request_url(make: MakeFeed) -> None:
    # No recorded request URL for /api/v3/ticker/bookTicker was found; compared with the
    # form Binance's API documentation gives: symbols=["BTCUSDT","BNBUSDT"], a JSON array
    # without spaces, percent-encoded by clients (%5B%22BTCUSDT%22,...%5D).
    feed = make("binance", "https://api.binance.com", pairs=["BTC/USDT", "ETH/USDT"])
    [request] = feed.ticker_requests()
    url = feed.fetcher.url_for(request)
    assert url == "https://api.binance.com/api/v3/ticker/bookTicker?symbols=%5B%22BTCUSDT%22,%22ETHUSDT%22%5D"
    assert unquote(urlsplit(url).query) == 'symbols=["BTCUSDT","ETHUSDT"]'


def test_stream_names_match_the_recorded_ones(make: MakeFeed) -> None:
    # cryptofeed's recording (sample_data/BINANCE.ws.1.0) subscribed to ftmusdt@bookTicker,
    # xmrbtc@bookTicker: lower-case symbol + "@bookTicker", as we send.
    feed = make("binance-ws", "http://unused.invalid", pairs=["BTC/USDT", "EUR/USDT"])
    assert feed.subscribe_messages() == [
        {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "eurusdt@bookTicker"], "id": 1}
    ]


async def test_documentation_rest_fixture(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v3/ticker/bookTicker", FakeResponse(body=blob("binance/bookTicker.json")))
    feed = make("binance", provider.url)
    obs = flatten(await drain(feed))
    assert (
        provider.requests[-1].query["symbols"]
        == '["BTCUSDT","ETHUSDT","EURUSDT","BTCEUR","ETHEUR","USDCUSDT"]'
    )
    recorded = {i["symbol"]: i for i in json.loads(blob("binance/bookTicker.json"))}
    got = {(o.base, o.quote): o for o in obs}
    assert len(got) == 6
    assert (got[("BTC", "USDT")].bid, got[("BTC", "USDT")].ask) == (
        recorded["BTCUSDT"]["bidPrice"],
        recorded["BTCUSDT"]["askPrice"],
    )
    assert got[("BTC", "USDT")].value == "97012.405"
    assert got[("EUR", "USDT")].value == "1.03155"
    assert feed.problems == []


async def test_other_markets_skipped_missing_and_bad_ones_reported(
    provider: FakeHttpServer, make: MakeFeed
) -> None:
    body = [
        {
            "symbol": "ETHBTC",
            "bidPrice": "0.05461000",
            "bidQty": "29.73",
            "askPrice": "0.05486300",
            "askQty": "1",
        },
        {"symbol": "BTCUSDT", "bidPrice": "29010.90000000", "askPrice": "29010.91000000", "extra": "x"},
        {"symbol": "ETHUSDT", "bidPrice": "", "askPrice": "1"},
    ]
    provider.route("/api/v3/ticker/bookTicker", FakeResponse(body=json.dumps(body).encode()))
    feed = make("binance", provider.url, pairs=["BTC/USDT", "ETH/USDT", "EUR/USDT"])
    obs = flatten(await drain(feed))
    assert [(o.base, o.quote, o.value) for o in obs] == [("BTC", "USDT", "29010.905")]
    assert feed.problems[0].startswith("ETH/USDT: ETHUSDT bidPrice:")
    assert feed.problems[1] == "EUR/USDT: not in Binance's reply"
    assert len(feed.problems) == 2


async def test_error_reply_fails(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v3/ticker/bookTicker", FakeResponse(200, b'{"code":-1121,"msg":"Invalid symbol."}'))
    with pytest.raises(FeedError, match="Binance error -1121: Invalid symbol"):
        await drain(make("binance", provider.url))


# --- WebSocket -----------------------------------------------------------------------------
def test_recorded_combined_stream_message_digit_exact(make: MakeFeed) -> None:
    feed = make("binance-ws", "http://unused.invalid", pairs=["BTC/USDT"])
    [line] = lines("ws-bookTicker-BTCUSDT.jsonl")
    data = json.loads(line)["data"]
    [obs] = feed.parse_message(json.loads(line), NOW)
    assert (obs.base, obs.quote) == ("BTC", "USDT")
    assert (obs.bid, obs.ask) == (data["b"], data["a"]) == ("29010.90000000", "29010.91000000")
    assert obs.value == "29010.905"
    assert obs.observed_at == NOW  # Binance's bookTicker carries no time: the arrival
    assert feed.problems == []


def test_recorded_messages_of_unknown_markets_are_reported_not_garbage(make: MakeFeed) -> None:
    feed = make("binance-ws", "http://unused.invalid", pairs=["BTC/USDT"])
    for line in lines("ws-cryptofeed.jsonl"):
        assert feed.parse_message(json.loads(line), NOW) == []
    assert feed.problems == [
        "FTMUSDT: cannot tell base and quote of symbol 'FTMUSDT'",
        "XMRBTC: cannot tell base and quote of symbol 'XMRBTC'",
        "FTMUSDT: 'aggTrade' event ignored (only bookTicker is read)",
    ]
    with pytest.raises(FeedError, match="not a Binance stream message"):
        feed.parse_message({"hello": 1}, NOW)


async def test_stream_through_the_runner(make: MakeFeed) -> None:
    messages = [*lines("ws-bookTicker.jsonl"), *lines("ws-bookTicker-BTCUSDT.jsonl")]
    received, _, deliverer = await replay_stream(make, "binance-ws", ["EUR/USDT", "BTC/USDT"], messages, 3)
    assert received[0][0] == {
        "method": "SUBSCRIBE",
        "params": ["eurusdt@bookTicker", "btcusdt@bookTicker"],
        "id": 1,
    }
    assert [(o.base, o.quote, o.value) for o in deliverer.batches[0]] == [("EUR", "USDT", "1.03155")]
    assert [(o.base, o.quote) for o in deliverer.batches[1]] == [("BTC", "USDT"), ("EUR", "USDT")]
    assert deliverer.batches[2][0].value == "29010.905"  # the recorded message, combined-stream form
