"""Kraken: REST ticker (poll) and WebSocket v2 ticker stream, crypto and fiat pairs.

REST  GET /0/public/Ticker?pair=XBTUSD,EURUSD,...
      {"error": [], "result": {"XXBTZUSD": {"a": ["97000.10000", "1", "1.000"],
                                            "b": ["96999.90000", "2", "2.000"],
                                            "c": ["97000.00000", "0.001"], ...}, ...}}
      a = ask [price, whole lot volume, lot volume], b = bid, c = last trade. Result keys use
      Kraken's asset names (XXBT, ZUSD, ZEUR; newer pairs plain: USDCHF, AUDUSD).
WS v2 wss://ws.kraken.com/v2, send {"method": "subscribe", "params": {"channel": "ticker",
      "symbol": ["BTC/USD", "EUR/USD"]}}; then {"channel": "ticker", "type": "snapshot" |
      "update", "data": [{"symbol": "BTC/USD", "bid": 97000.1, "ask": 97000.2, "last": ...,
      "timestamp": "2025-01-15T14:00:00.123456Z"}]}, plus heartbeat / status / method acks.
      Prices are JSON numbers; they are read as exact decimals, never floats.

Value = mid ((bid + ask) / 2, exact); bid and ask are kept as published.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_collector.checks import mid
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import MarketFeed, StreamFeed
from kurs_collector.feeds.boc import load_json, number_text
from kurs_collector.feeds.pairs import split_pair, split_symbol
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


def _rest_name(pair: str) -> str:
    base, quote = split_pair(pair)
    return ("XBT" if base == "BTC" else base) + ("XBT" if quote == "BTC" else quote)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FeedError(f"bad timestamp {value!r}") from None
    return stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


class KrakenFeed(MarketFeed):
    adapter = "kraken"
    source = "kraken"
    description = "Kraken ticker over REST (bid/ask/mid), crypto and fiat pairs"

    def ticker_requests(self) -> list[Request]:
        names = ",".join(_rest_name(p) for p in (self.pairs or DEFAULT_PAIRS))
        return [Request("/0/public/Ticker", (("pair", names),), conditional=False)]

    def parse_ticker(self, payload: Payload, observed_at: dt.datetime) -> list[Observation]:
        doc = load_json(payload.body)
        if not isinstance(doc, dict):
            raise FeedError("ticker reply is not an object")
        errors = doc.get("error")
        if errors:
            raise FeedError(f"Kraken error: {'; '.join(str(e) for e in errors)[:200]}")
        result = doc.get("result")
        if not isinstance(result, dict):
            raise FeedError("ticker reply without result")
        out: list[Observation] = []
        for name, ticker in result.items():
            try:
                base, quote = split_symbol(name)
                bid, ask = ticker["b"][0], ticker["a"][0]
                bid_text, ask_text = number_text(bid, f"{name} bid"), number_text(ask, f"{name} ask")
                value = mid(bid_text, ask_text)
            except (FeedError, KeyError, IndexError, TypeError) as exc:
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
        return out


class KrakenStreamFeed(StreamFeed):
    adapter = "kraken-ws"
    source = "kraken"
    description = "Kraken WebSocket v2 ticker stream (bid/ask/mid)"
    default_ws_url = "wss://ws.kraken.com/v2"

    def subscribe_messages(self) -> list[Any]:
        symbols = [f"{b}/{q}" for b, q in (split_pair(p) for p in (self.pairs or DEFAULT_PAIRS))]
        return [{"method": "subscribe", "params": {"channel": "ticker", "symbol": symbols}}]

    def parse_message(self, message: Any, received_at: dt.datetime) -> list[Observation]:
        if not isinstance(message, dict):
            raise FeedError("message is not a JSON object")
        if "method" in message:
            if message.get("success") is False:
                raise FeedError(f"{message.get('method')} refused: {message.get('error')}")
            return []
        channel = message.get("channel")
        if channel in ("heartbeat", "status", "pong"):
            return []
        if channel != "ticker":
            raise FeedError(f"unexpected channel {channel!r}")
        data = message.get("data")
        if not isinstance(data, list):
            raise FeedError("ticker message without data")
        out: list[Observation] = []
        for item in data:
            if not isinstance(item, dict):
                raise FeedError("ticker item is not an object")
            base, quote = split_pair(str(item.get("symbol", "")))
            bid = number_text(item.get("bid"), "bid")
            ask = number_text(item.get("ask"), "ask")
            stamp = _parse_time(item.get("timestamp")) or received_at
            out.append(
                self.observation(base, quote, mid(bid, ask), stamp.date(), stamp, received_at, bid, ask)
            )
        return out
