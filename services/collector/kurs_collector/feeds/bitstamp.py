"""Bitstamp: REST ticker (poll) and the WebSocket order book top (bid/ask).

REST GET /api/v2/ticker/btcusd/ (one request per pair)
     {"timestamp": "1710328241", "open": "71448", "high": "73656", "low": "68626",
      "last": "73285", "volume": "135.29692054", "vwap": "70853", "bid": "73353",
      "ask": "73367", "side": "0", "open_24": "72144", "percent_change_24": "1.58"}
WS   wss://ws.bitstamp.net, send {"event": "bts:subscribe", "data": {"channel":
     "order_book_btcusd"}} per pair; then {"data": {"timestamp": "1653978373",
     "microtimestamp": "1653978373164007", "bids": [["31524.50", "0.36400000"], ...],
     "asks": [["31535.44", "0.31708837"], ...]}, "channel": "order_book_btcusd",
     "event": "data"}; "bts:subscription_succeeded" acknowledges; "bts:request_reconnect"
     asks the client to reconnect (done at once). Other channels (diff_order_book_,
     live_trades_) are not read.

Value = mid of the best bid and ask (exact). A figure that cannot be read (an empty side of
the book, a bad number) is reported (feed.report) with its reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_collector.checks import load_json, mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed
from kurs_collector.feeds.pairs import price_text, split_pair, split_symbol
from kurs_collector.feeds.stream import Reconnect, StreamFeed
from kurs_collector.http import Payload, Request
from kurs_common.observation import Observation

DEFAULT_PAIRS = ["BTC/USD", "BTC/EUR", "ETH/USD", "ETH/EUR", "EUR/USD", "GBP/USD", "USDT/USD", "USDC/USD"]
CONTROL_EVENTS = ("bts:subscription_succeeded", "bts:heartbeat", "bts:unsubscription_succeeded")


def market(pair: str) -> str:
    base, quote = split_pair(pair)
    return (base + quote).lower()


def _micros(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value.isdigit():
        return None
    return dt.datetime.fromtimestamp(int(value) / 1_000_000, dt.UTC)


class BitstampFeed(MarketFeed):
    adapter = "bitstamp"
    source = "bitstamp"
    description = "Bitstamp tickers over REST (bid/ask/mid)"

    def ticker_requests(self) -> list[Request]:
        return [
            Request(f"/api/v2/ticker/{market(p)}/", conditional=False) for p in (self.pairs or DEFAULT_PAIRS)
        ]

    def parse_ticker(self, payload: Payload, observed_at: dt.datetime) -> list[Observation]:
        name = payload.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        base, quote = split_symbol(name)
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or ("bid" not in doc and "ask" not in doc):
            raise FeedError(f"{name}: not a ticker ({str(doc)[:80]})")
        return self.bid_ask_observation(
            name, (base, quote), doc.get("bid"), doc.get("ask"), observed_at, payload.fetched_at
        )


class BitstampStreamFeed(StreamFeed):
    adapter = "bitstamp-ws"
    source = "bitstamp"
    description = "Bitstamp WebSocket order book top (bid/ask/mid)"
    default_ws_url = "wss://ws.bitstamp.net"

    def subscribe_messages(self) -> list[Any]:
        return [
            {"event": "bts:subscribe", "data": {"channel": f"order_book_{market(p)}"}}
            for p in (self.pairs or DEFAULT_PAIRS)
        ]

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        if not isinstance(message, dict) or "event" not in message:
            raise FeedError("not a Bitstamp message (no event)")
        event = message.get("event")
        if event == "bts:request_reconnect":
            raise Reconnect("Bitstamp asked to reconnect")
        if event in CONTROL_EVENTS:
            return []
        if event == "bts:error":
            raise FeedError(f"Bitstamp error: {message.get('data')}")
        channel = str(message.get("channel", ""))
        if event != "data" or not channel.startswith("order_book_"):
            self.report(f"{channel or '-'}: event {event!r} ignored (only order_book_ data is read)")
            return []
        name = channel.removeprefix("order_book_")
        try:
            base, quote = split_symbol(name)
            data = message.get("data")
            if not isinstance(data, dict):
                raise FeedError("data is not an object")
            bid = price_text(_top(data, "bids"), "bid")
            ask = price_text(_top(data, "asks"), "ask")
            value = mid(bid, ask)
        except FeedError as exc:
            self.report(f"{name}: {exc}")
            return []
        stamp = _micros(data.get("microtimestamp")) or received_at
        return [self.observation(base, quote, value, stamp.date(), stamp, received_at, bid, ask)]


def _top(data: dict[str, Any], side: str) -> Any:
    levels = data.get(side)
    if not isinstance(levels, list) or not levels:
        raise FeedError(f"no {side} in the book")
    level = levels[0]
    if not isinstance(level, list) or not level:
        raise FeedError(f"best of {side} is not [price, amount]")
    return level[0]
