"""Coinbase Exchange: REST product ticker (poll) and the WebSocket `ticker` channel.

REST GET /products/BTC-USD/ticker (one request per product; Coinbase serves no batch ticker)
     {"ask": "73369.19", "bid": "73360.34", "volume": "1207.50668151", "trade_id": ...,
      "price": "73367.8", "size": "0.00730812", "time": "2024-03-13T11:10:41.270099Z", ...}
     An unknown product answers HTTP 404 {"message": "NotFound"}.
WS   wss://ws-feed.exchange.coinbase.com, send {"type": "subscribe", "product_ids": [...],
     "channels": ["ticker"]}; then {"type": "ticker", "sequence": ..., "product_id": "BTC-USD",
     "price": "29940.91", ..., "best_bid": "29940.90", "best_ask": "29940.91", "side": "buy",
     "time": "2022-06-02T09:20:54.127011Z", ...}, plus "subscriptions", "heartbeat", "status"
     and "error" messages.

Value = mid of best bid and ask (exact); bid and ask kept as published. A figure that cannot
be read is reported (feed.report) with its reason; other message types are ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_collector.checks import load_json, mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed
from kurs_collector.feeds.pairs import parse_stamp, price_text, split_pair
from kurs_collector.feeds.stream import StreamFeed
from kurs_collector.http import Payload, Request
from kurs_common.observation import Observation

DEFAULT_PAIRS = ["BTC/USD", "BTC/EUR", "ETH/USD", "ETH/EUR", "USDT/USD", "USDT/EUR", "EUR/USD"]
CONTROL_TYPES = ("subscriptions", "heartbeat", "status")


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
        if "bid" not in doc and "ask" not in doc:
            raise FeedError(f"{name}: not a ticker ({str(doc.get('message', doc))[:80]})")
        return self.bid_ask_observation(
            name, (base, quote), doc.get("bid"), doc.get("ask"), observed_at, payload.fetched_at
        )


class CoinbaseStreamFeed(StreamFeed):
    adapter = "coinbase-ws"
    source = "coinbase"
    description = "Coinbase Exchange WebSocket ticker channel (bid/ask/mid)"
    default_ws_url = "wss://ws-feed.exchange.coinbase.com"

    def subscribe_messages(self) -> list[Any]:
        products = [product(p) for p in (self.pairs or DEFAULT_PAIRS)]
        return [{"type": "subscribe", "product_ids": products, "channels": ["ticker"]}]

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        if not isinstance(message, dict) or "type" not in message:
            raise FeedError("not a Coinbase message (no type)")
        kind = message.get("type")
        if kind in CONTROL_TYPES:
            return []
        if kind == "error":
            raise FeedError(
                f"error from Coinbase: {message.get('message')} {message.get('reason', '')}".strip()
            )
        if kind != "ticker":
            self.report(f"unexpected message type {kind!r}, ignored")
            return []
        name = str(message.get("product_id", ""))
        try:
            base, quote = split_pair(name, "-")
            bid = price_text(message.get("best_bid"), "best_bid")
            ask = price_text(message.get("best_ask"), "best_ask")
            value = mid(bid, ask)
            stamp = parse_stamp(message.get("time")) or received_at
        except FeedError as exc:
            self.report(f"{name}: {exc}")
            return []
        return [self.observation(base, quote, value, stamp.date(), stamp, received_at, bid, ask)]
