"""Binance spot: REST book ticker (poll) and the WebSocket `<symbol>@bookTicker` streams.

REST GET /api/v3/ticker/bookTicker?symbols=["BTCUSDT","ETHUSDT"]
     [{"symbol": "BTCUSDT", "bidPrice": "97012.40000000", "bidQty": "1.2",
       "askPrice": "97012.41000000", "askQty": "0.5"}, ...]
WS   wss://stream.binance.com:9443/ws, send {"method": "SUBSCRIBE", "params":
     ["btcusdt@bookTicker", ...], "id": 1}; acknowledged by {"result": null, "id": 1}; then
     {"u": 400900217, "s": "BTCUSDT", "b": "97012.40", "B": "1.2", "a": "97012.41", "A": "0.5"}
     (no timestamp: arrival time is the observation time).

Symbols are concatenated codes (BTCUSDT, EURUSDT) and split against the known codes.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kurs_collector.checks import mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed, StreamFeed
from kurs_collector.feeds.boc import load_json, number_text
from kurs_collector.feeds.pairs import split_pair, split_symbol
from kurs_collector.http import Payload, Request
from kurs_common.observation import Observation

DEFAULT_PAIRS = ["BTC/USDT", "ETH/USDT", "EUR/USDT", "BTC/EUR", "ETH/EUR", "USDC/USDT"]


def symbol(pair: str) -> str:
    base, quote = split_pair(pair)
    return base + quote


class BinanceFeed(MarketFeed):
    adapter = "binance"
    source = "binance"
    description = "Binance spot book tickers over REST (bid/ask/mid)"

    def ticker_requests(self) -> list[Request]:
        symbols = json.dumps([symbol(p) for p in (self.pairs or DEFAULT_PAIRS)], separators=(",", ":"))
        return [Request("/api/v3/ticker/bookTicker", (("symbols", symbols),), conditional=False)]

    def parse_ticker(self, payload: Payload, observed_at: dt.datetime) -> list[Observation]:
        doc = load_json(payload.body)
        if isinstance(doc, dict) and "msg" in doc:
            raise FeedError(f"Binance error {doc.get('code')}: {doc['msg']}")
        if not isinstance(doc, list):
            raise FeedError("bookTicker reply is not a list")
        out: list[Observation] = []
        for item in doc:
            try:
                base, quote = split_symbol(str(item["symbol"]))
                bid = number_text(item["bidPrice"], "bidPrice")
                ask = number_text(item["askPrice"], "askPrice")
                value = mid(bid, ask)
            except (FeedError, KeyError, TypeError) as exc:
                self.report(f"{str(item)[:60]}: {exc}")
                continue
            out.append(
                self.observation(
                    base, quote, value, observed_at.date(), observed_at, payload.fetched_at, bid, ask
                )
            )
        return out


class BinanceStreamFeed(StreamFeed):
    adapter = "binance-ws"
    source = "binance"
    description = "Binance spot WebSocket book ticker streams (bid/ask/mid)"
    default_ws_url = "wss://stream.binance.com:9443/ws"

    def subscribe_messages(self) -> list[Any]:
        streams = [f"{symbol(p).lower()}@bookTicker" for p in (self.pairs or DEFAULT_PAIRS)]
        return [{"method": "SUBSCRIBE", "params": streams, "id": 1}]

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        if not isinstance(message, dict):
            raise FeedError("message is not a JSON object")
        if "error" in message:
            raise FeedError(f"Binance error: {message['error']}")
        if "result" in message and "id" in message:
            return []
        if "s" not in message:
            raise FeedError("not a bookTicker message")
        base, quote = split_symbol(str(message["s"]))
        bid, ask = number_text(message.get("b"), "b"), number_text(message.get("a"), "a")
        return [
            self.observation(
                base, quote, mid(bid, ask), received_at.date(), received_at, received_at, bid, ask
            )
        ]
