"""Binance spot: REST book ticker (poll) and the WebSocket `<symbol>@bookTicker` streams.

REST GET /api/v3/ticker/bookTicker?symbols=["BTCUSDT","ETHUSDT"] (one request for every pair)
     [{"symbol": "BTCUSDT", "bidPrice": "97012.40000000", "bidQty": "1.2",
       "askPrice": "97012.41000000", "askQty": "0.5"}, ...]
     An error is {"code": -1121, "msg": "Invalid symbol."} (HTTP 400).
WS   wss://stream.binance.com:9443/ws, send {"method": "SUBSCRIBE", "params":
     ["btcusdt@bookTicker", ...], "id": 1}; acknowledged by {"result": null, "id": 1}; then
     {"u": 400900217, "s": "BTCUSDT", "b": "29010.90000000", "B": "13.94302000",
      "a": "29010.91000000", "A": "3.99953000"} (no timestamp: arrival time is the observation
     time). The combined endpoint (/stream?streams=...) wraps the same object as
     {"stream": "btcusdt@bookTicker", "data": {...}}; both are read.

Symbols are concatenated codes (BTCUSDT, EURUSDT) and split against the known codes; a
symbol that is not one of the configured pairs is skipped, one that cannot be read is
reported (feed.report) with its reason.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kurs_collector.checks import load_json, mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed
from kurs_collector.feeds.pairs import price_text, split_pair, split_symbol, wanted
from kurs_collector.feeds.stream import StreamFeed
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
        if isinstance(doc, dict) and "symbol" in doc:
            doc = [doc]  # a single-symbol reply is one object
        if not isinstance(doc, list):
            raise FeedError("bookTicker reply is not a list")
        pairs = wanted(self.pairs or DEFAULT_PAIRS)
        names = {b + q: (b, q) for b, q in pairs}
        out: list[Observation] = []
        seen: set[str] = set()
        for item in doc:
            name = str(item.get("symbol", "")) if isinstance(item, dict) else ""
            if name not in names:
                if not name:
                    self.report(f"bookTicker entry without a symbol: {str(item)[:60]}")
                continue  # another market's entry: not asked for
            seen.add(name)
            base, quote = names[name]
            try:
                bid = price_text(item.get("bidPrice"), f"{name} bidPrice")
                ask = price_text(item.get("askPrice"), f"{name} askPrice")
                value = mid(bid, ask)
            except FeedError as exc:
                self.report(f"{base}/{quote}: {exc}")
                continue
            out.append(
                self.observation(
                    base, quote, value, observed_at.date(), observed_at, payload.fetched_at, bid, ask
                )
            )
        for name, (base, quote) in names.items():
            if name not in seen:
                self.report(f"{base}/{quote}: not in Binance's reply")
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
        if isinstance(message.get("data"), dict) and "stream" in message:
            message = message["data"]  # combined-stream wrapper
        if "s" not in message:
            raise FeedError("not a Binance stream message")
        name = str(message["s"])
        if "e" in message and message["e"] != "bookTicker":
            self.report(f"{name}: {message['e']!r} event ignored (only bookTicker is read)")
            return []
        try:
            base, quote = split_symbol(name)
            bid, ask = price_text(message.get("b"), "b"), price_text(message.get("a"), "a")
            value = mid(bid, ask)
        except FeedError as exc:
            self.report(f"{name}: {exc}")
            return []
        return [self.observation(base, quote, value, received_at.date(), received_at, received_at, bid, ask)]
