"""Kraken: REST ticker (poll) and WebSocket v2 ticker stream, crypto and fiat pairs.

REST  GET /0/public/Ticker?pair=XBTUSD,EURUSD,... (one request for every pair)
      {"error": [], "result": {"XXBTZUSD": {"a": ["73380.70000", "1", "1.000"],
                                            "b": ["73380.60000", "1", "1.000"],
                                            "c": ["73380.60000", "0.00160710"], ...}, ...}}
      a = ask [price, whole lot volume, lot volume], b = bid, c = last trade. Result keys use
      Kraken's asset names, not the requested names (XXBTZUSD for XBTUSD, ZEURZUSD for
      EURUSD; newer pairs plain: XBTUSDT, USDCHF); they are mapped back to codes here.
      "error" may carry warnings next to a result; an error without a result fails the poll.
WS v2 wss://ws.kraken.com/v2, send {"method": "subscribe", "params": {"channel": "ticker",
      "symbol": ["BTC/USD", "EUR/USD"]}}; then {"channel": "ticker", "type": "snapshot" |
      "update", "data": [{"symbol": "BTC/USD", "bid": 97000.1, "ask": 97000.2, "last": ...,
      "timestamp": "2025-01-15T14:00:00.123456Z"}]}, plus heartbeat / status / method acks.
      Prices are JSON numbers; they are read as exact decimals, never floats.

Value = mid ((bid + ask) / 2, exact); bid and ask are kept as published. A figure that
cannot be read is reported (feed.report) with its reason and the others are kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_collector.checks import load_json, mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed
from kurs_collector.feeds.pairs import parse_stamp, price_text, split_pair, split_symbol, wanted
from kurs_collector.feeds.stream import StreamFeed
from kurs_collector.http import Payload, Request
from kurs_common.observation import Observation

DEFAULT_PAIRS = [
    "BTC/USD",
    "BTC/EUR",
    "ETH/USD",
    "ETH/EUR",
    "USDT/USD",
    "USDC/USD",
    "EUR/USD",
    "GBP/USD",
    "USD/JPY",
    "USD/CAD",
    "USD/CHF",
    "AUD/USD",
]
CONTROL_CHANNELS = ("heartbeat", "status", "pong")


def rest_name(pair: str) -> str:
    """The name Kraken's REST API takes for a pair: "BTC/USD" -> "XBTUSD"."""
    base, quote = split_pair(pair)
    return ("XBT" if base == "BTC" else base) + ("XBT" if quote == "BTC" else quote)


class KrakenFeed(MarketFeed):
    adapter = "kraken"
    source = "kraken"
    description = "Kraken ticker over REST (bid/ask/mid), crypto and fiat pairs"

    def ticker_requests(self) -> list[Request]:
        names = ",".join(rest_name(p) for p in (self.pairs or DEFAULT_PAIRS))
        return [Request("/0/public/Ticker", (("pair", names),), conditional=False)]

    def parse_ticker(self, payload: Payload, observed_at: dt.datetime) -> list[Observation]:
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or not ("result" in doc or "error" in doc):
            raise FeedError("not a Kraken ticker reply (no result, no error)")
        errors = doc.get("error") or []
        result = doc.get("result")
        if not isinstance(result, dict) or not result:
            detail = "; ".join(str(e) for e in errors)[:200] if isinstance(errors, list) else str(errors)
            raise FeedError(f"Kraken error: {detail}" if errors else "ticker reply without result")
        for warning in errors if isinstance(errors, list) else [errors]:
            self.report(f"Kraken warning: {str(warning)[:200]}")
        out: list[Observation] = []
        seen: set[tuple[str, str]] = set()
        for name, ticker in result.items():
            try:
                base, quote = split_symbol(name)
                seen.add((base, quote))
                bid_text = price_text(_first(ticker, "b"), f"{name} bid")
                ask_text = price_text(_first(ticker, "a"), f"{name} ask")
                value = mid(bid_text, ask_text)
            except FeedError as exc:
                self.report(f"{name}: {exc}")
                continue
            out.append(
                self.observation(
                    base,
                    quote,
                    value,
                    observed_at.date(),
                    observed_at,
                    payload.fetched_at,
                    bid_text,
                    ask_text,
                )
            )
        for base, quote in wanted(self.pairs or DEFAULT_PAIRS):
            if (base, quote) not in seen:
                self.report(f"{base}/{quote}: not in Kraken's reply")
        return out


def _first(ticker: Any, key: str) -> Any:
    if not isinstance(ticker, dict):
        raise FeedError("ticker entry is not an object")
    field = ticker.get(key)
    if not isinstance(field, list) or not field:
        raise FeedError(f"no {key!r} array")
    return field[0]


class KrakenStreamFeed(StreamFeed):
    adapter = "kraken-ws"
    source = "kraken"
    description = "Kraken WebSocket v2 ticker stream (bid/ask/mid)"
    default_ws_url = "wss://ws.kraken.com/v2"

    def subscribe_messages(self) -> list[Any]:
        symbols = [f"{b}/{q}" for b, q in wanted(self.pairs or DEFAULT_PAIRS)]
        return [{"method": "subscribe", "params": {"channel": "ticker", "symbol": symbols}}]

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        if not isinstance(message, dict):
            raise FeedError("message is not a JSON object")
        if "method" in message:
            if message.get("success") is False:
                what = " ".join(str(x) for x in (message.get("method"), message.get("symbol")) if x)
                self.report(f"{what} refused: {message.get('error')}")
            return []
        channel = message.get("channel")
        if channel in CONTROL_CHANNELS:
            return []
        if channel is None:
            raise FeedError("not a Kraken v2 message (no channel, no method)")
        if channel != "ticker":
            self.report(f"unexpected channel {channel!r}, ignored")
            return []
        data = message.get("data")
        if not isinstance(data, list):
            raise FeedError("ticker message without data")
        out: list[Observation] = []
        for item in data:
            symbol = str(item.get("symbol", "")) if isinstance(item, dict) else repr(item)[:40]
            try:
                if not isinstance(item, dict):
                    raise FeedError("ticker item is not an object")
                base, quote = split_pair(symbol)
                bid = price_text(item.get("bid"), "bid")
                ask = price_text(item.get("ask"), "ask")
                value = mid(bid, ask)
                stamp = parse_stamp(item.get("timestamp")) or received_at
            except FeedError as exc:
                self.report(f"{symbol}: {exc}")
                continue
            out.append(self.observation(base, quote, value, stamp.date(), stamp, received_at, bid, ask))
        return out
