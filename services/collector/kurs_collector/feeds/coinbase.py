"""Coinbase Exchange: REST product ticker (poll) and the WebSocket `ticker` channel.

REST GET /products/BTC-USD/ticker (one request per product)
     {"ask": "97012.41", "bid": "97012.40", "volume": "...", "trade_id": 7, "price": "97012.41",
      "size": "0.001", "time": "2025-01-15T14:00:00.123456Z"}
WS   wss://ws-feed.exchange.coinbase.com, send {"type": "subscribe", "product_ids": [...],
     "channels": ["ticker"]}; then {"type": "ticker", "product_id": "BTC-USD", "price": ...,
     "best_bid": "...", "best_ask": "...", "time": "..."}, plus "subscriptions", "heartbeat"
     and "error" messages.

Value = mid of best bid and ask (exact); bid and ask kept as published.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_collector.checks import mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed, StreamFeed
from kurs_collector.feeds.boc import load_json, number_text
from kurs_collector.feeds.kraken import _parse_time
from kurs_collector.feeds.pairs import split_pair
from kurs_collector.http import Payload, Request
from kurs_common.observation import Observation

DEFAULT_PAIRS = ["BTC/USD", "BTC/EUR", "ETH/USD", "ETH/EUR", "USDT/USD", "USDT/EUR", "EUR/USD"]


def product(pair: str) -> str:
    base, quote = split_pair(pair)
    return f"{base}-{quote}"


class CoinbaseFeed(MarketFeed):
    adapter = "coinbase"
    source = "coinbase"
    description = "Coinbase Exchange product tickers over REST (bid/ask/mid)"

    def ticker_requests(self) -> list[Request]:
        return [
            Request(f"/products/{product(p)}/ticker", conditional=False)
            for p in (self.pairs or DEFAULT_PAIRS)
        ]

    def parse_ticker(self, payload: Payload, observed_at: dt.datetime) -> list[Observation]:
        name = payload.url.rsplit("/products/", 1)[-1].split("/", 1)[0]
        base, quote = split_pair(name, "-")
        doc = load_json(payload.body)
        if not isinstance(doc, dict):
            raise FeedError(f"{name}: ticker is not an object")
        if "message" in doc and "bid" not in doc:
            raise FeedError(f"{name}: {doc['message']}")
        bid, ask = number_text(doc.get("bid"), f"{name} bid"), number_text(doc.get("ask"), f"{name} ask")
        return [
            self.observation(
                base, quote, mid(bid, ask), observed_at.date(), observed_at, payload.fetched_at, bid, ask
            )
        ]


class CoinbaseStreamFeed(StreamFeed):
    adapter = "coinbase-ws"
    source = "coinbase"
    description = "Coinbase Exchange WebSocket ticker channel (bid/ask/mid)"
    default_ws_url = "wss://ws-feed.exchange.coinbase.com"

    def subscribe_messages(self) -> list[Any]:
        products = [product(p) for p in (self.pairs or DEFAULT_PAIRS)]
        return [{"type": "subscribe", "product_ids": products, "channels": ["ticker"]}]

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        if not isinstance(message, dict):
            raise FeedError("message is not a JSON object")
        kind = message.get("type")
        if kind in ("subscriptions", "heartbeat"):
            return []
        if kind == "error":
            raise FeedError(
                f"error from Coinbase: {message.get('message')} {message.get('reason', '')}".strip()
            )
        if kind != "ticker":
            raise FeedError(f"unexpected message type {kind!r}")
        base, quote = split_pair(str(message.get("product_id", "")), "-")
        bid = number_text(message.get("best_bid"), "best_bid")
        ask = number_text(message.get("best_ask"), "best_ask")
        stamp = _parse_time(message.get("time")) or received_at
        return [self.observation(base, quote, mid(bid, ask), stamp.date(), stamp, received_at, bid, ask)]
