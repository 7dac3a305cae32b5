"""Coinbase, Binance and Bitstamp: REST tickers and WebSocket streams, against local servers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from kurs_collector.errors import FeedError
from kurs_collector.fakes import (
    Blob,
    FakeHttpServer,
    FakeResponse,
    FakeWsServer,
    MakeFeed,
    RecordingDeliverer,
    drain,
    flatten,
    wait_until,
)
from kurs_collector.runner import Collector

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"
UTC = dt.UTC


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


async def stream(
    make: MakeFeed, adapter: str, ws: FakeWsServer, pairs: list[str], count: int
) -> RecordingDeliverer:
    feed = make(adapter, "http://unused.invalid", ws_url=ws.url, pairs=pairs)
    deliverer = RecordingDeliverer()
    collector = Collector([(feed, True)], deliverer)  # type: ignore[arg-type]
    collector.start()
    try:
        await deliverer.wait_for(count)
    finally:
        await collector.stop()
    return deliverer


async def test_coinbase_rest(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USD/ticker", FakeResponse(body=blob("coinbase/ticker-BTC-USD.json")))
    provider.route("/products/EUR-USD/ticker", FakeResponse(body=blob("coinbase/ticker-EUR-USD.json")))
    feed = make("coinbase", provider.url, pairs=["EUR/USD", "BTC/USD"])
    batches = await drain(feed)
    assert len(batches) == 1
    got = {(o.base, o.quote): (o.value, o.bid, o.ask) for o in batches[0]}
    assert got == {
        ("EUR", "USD"): ("1.03165", "1.0316", "1.0317"),
        ("BTC", "USD"): ("97012.405", "97012.40", "97012.41"),
    }
    assert len({o.observed_at for o in batches[0]}) == 1


async def test_coinbase_unknown_product(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/products/BTC-USD/ticker", FakeResponse(404, b'{"message":"NotFound"}'))
    with pytest.raises(FeedError, match="HTTP 404"):
        await drain(make("coinbase", provider.url, pairs=["BTC/USD"]))


async def test_coinbase_stream(make: MakeFeed) -> None:
    script: list[Any] = [
        ("recv",),
        *[("send", line) for line in lines("coinbase/ws-ticker.jsonl")],
        ("hold",),
    ]
    async with FakeWsServer([script]) as ws:
        deliverer = await stream(make, "coinbase-ws", ws, ["EUR/USD", "BTC/USD"], 2)
    assert ws.received[0][0] == {
        "type": "subscribe",
        "product_ids": ["EUR-USD", "BTC-USD"],
        "channels": ["ticker"],
    }
    eur, btc = deliverer.batches[:2]
    assert [(o.base, o.quote, o.value) for o in eur] == [("EUR", "USD", "1.03165")]
    assert [(o.base, o.quote) for o in btc] == [("BTC", "USD"), ("EUR", "USD")]
    assert {o.observed_at for o in btc} == {dt.datetime(2025, 1, 15, 14, 0, 0, 500000, tzinfo=UTC)}


async def test_binance_rest(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v3/ticker/bookTicker", FakeResponse(body=blob("binance/bookTicker.json")))
    feed = make("binance", provider.url)
    obs = flatten(await drain(feed))
    assert provider.requests[-1].query["symbols"] == (
        '["BTCUSDT","ETHUSDT","EURUSDT","BTCEUR","ETHEUR","USDCUSDT"]'
    )
    got = {(o.base, o.quote): o.value for o in obs}
    assert got[("BTC", "USDT")] == "97012.405"
    assert got[("EUR", "USDT")] == "1.03155"
    assert got[("USDC", "USDT")] == "1.00015"
    assert len(obs) == 6


async def test_binance_error_reply(provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v3/ticker/bookTicker", FakeResponse(400, b'{"code":-1121,"msg":"Invalid symbol."}'))
    with pytest.raises(FeedError, match="HTTP 400"):
        await drain(make("binance", provider.url))


async def test_binance_stream(make: MakeFeed) -> None:
    script: list[Any] = [
        ("recv",),
        *[("send", line) for line in lines("binance/ws-bookTicker.jsonl")],
        ("hold",),
    ]
    async with FakeWsServer([script]) as ws:
        deliverer = await stream(make, "binance-ws", ws, ["EUR/USDT", "BTC/USDT"], 2)
    assert ws.received[0][0] == {
        "method": "SUBSCRIBE",
        "params": ["eurusdt@bookTicker", "btcusdt@bookTicker"],
        "id": 1,
    }
    assert [(o.base, o.quote, o.value) for o in deliverer.batches[0]] == [("EUR", "USDT", "1.03155")]
    assert [(o.base, o.quote) for o in deliverer.batches[1]] == [("BTC", "USDT"), ("EUR", "USDT")]


async def test_bitstamp_rest(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/api/v2/ticker/btcusd/", FakeResponse(body=blob("bitstamp/ticker-btcusd.json")))
    provider.route("/api/v2/ticker/eurusd/", FakeResponse(body=blob("bitstamp/ticker-eurusd.json")))
    obs = flatten(await drain(make("bitstamp", provider.url, pairs=["BTC/USD", "EUR/USD"])))
    assert {(o.base, o.quote): o.value for o in obs} == {("BTC", "USD"): "97012", ("EUR", "USD"): "1.031605"}


async def test_bitstamp_stream_and_reconnect_request(make: MakeFeed) -> None:
    book = [("send", line) for line in lines("bitstamp/ws-order-book.jsonl")]
    first: list[Any] = [
        ("recv",),
        ("recv",),
        *book,
        ("send", '{"event":"bts:request_reconnect","channel":"","data":""}'),
        ("hold",),
    ]
    second: list[Any] = [("recv",), ("recv",), *book, ("hold",)]
    async with FakeWsServer([first, second]) as ws:
        feed = make("bitstamp-ws", "http://unused.invalid", ws_url=ws.url, pairs=["EUR/USD", "BTC/USD"])
        deliverer = RecordingDeliverer()
        collector = Collector([(feed, True)], deliverer)  # type: ignore[arg-type]
        collector.start()
        try:
            await deliverer.wait_for(4)
            await wait_until(lambda: len(ws.received) == 2 and len(ws.received[1]) == 2)
        finally:
            await collector.stop()
    channels = [m["data"]["channel"] for m in ws.received[1]]
    assert channels == ["order_book_eurusd", "order_book_btcusd"]  # resubscribed
    assert [(o.base, o.quote, o.value) for o in deliverer.batches[0]] == [("EUR", "USD", "1.031605")]
    assert deliverer.batches[1][0].observed_at == dt.datetime(2025, 1, 15, 14, 0, 0, 600000, tzinfo=UTC)
    assert "asked to reconnect" in collector.health["bitstamp-ws"].last_error
