"""Bitstamp: REST ticker (poll) and the WebSocket order book top (bid/ask).

REST GET /api/v2/ticker/btcusd/
     {"timestamp": "1736949600", "last": "97012", "bid": "97011", "ask": "97013", ...}
WS   wss://ws.bitstamp.net, send {"event": "bts:subscribe", "data": {"channel":
     "order_book_btcusd"}} per pair; then {"event": "data", "channel": "order_book_btcusd",
     "data": {"timestamp": "...", "microtimestamp": "...", "bids": [["97011", "0.5"], ...],
     "asks": [["97013", "0.2"], ...]}}; "bts:subscription_succeeded" acknowledges;
     "bts:request_reconnect" asks the client to reconnect (done at once).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_collector.checks import mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed, Reconnect, StreamFeed
from kurs_collector.feeds.boc import load_json, number_text
from kurs_collector.feeds.pairs import split_pair, split_symbol
from kurs_collector.http import Payload, Request
from kurs_common.observation import Observation

DEFAULT_PAIRS = ["BTC/USD", "BTC/EUR", "ETH/USD", "ETH/EUR", "EUR/USD", "GBP/USD", "USDT/USD", "USDC/USD"]


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
        name = payload.url.rstrip("/").rsplit("/", 1)[-1]
        base, quote = split_symbol(name)
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or "bid" not in doc or "ask" not in doc:
            raise FeedError(f"{name}: not a ticker ({str(doc)[:80]})")
        bid, ask = number_text(doc["bid"], f"{name} bid"), number_text(doc["ask"], f"{name} ask")
        return [
            self.observation(
                base, quote, mid(bid, ask), observed_at.date(), observed_at, payload.fetched_at, bid, ask
            )
        ]


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
        if not isinstance(message, dict):
            raise FeedError("message is not a JSON object")
        event = message.get("event")
        if event == "bts:request_reconnect":
            raise Reconnect("Bitstamp asked to reconnect")
        if event in ("bts:subscription_succeeded", "bts:heartbeat", "bts:unsubscription_succeeded"):
            return []
        if event == "bts:error":
            raise FeedError(f"Bitstamp error: {message.get('data')}")
        if event != "data":
            raise FeedError(f"unexpected event {event!r}")
        channel = str(message.get("channel", ""))
        if not channel.startswith("order_book_"):
            raise FeedError(f"unexpected channel {channel!r}")
        base, quote = split_symbol(channel.removeprefix("order_book_"))
        data = message.get("data")
        if not isinstance(data, dict) or not data.get("bids") or not data.get("asks"):
            raise FeedError(f"{channel}: empty book")
        bid = number_text(data["bids"][0][0], "bid")
        ask = number_text(data["asks"][0][0], "ask")
        stamp = _micros(data.get("microtimestamp")) or received_at
        return [self.observation(base, quote, mid(bid, ask), stamp.date(), stamp, received_at, bid, ask)]
