"""Kraken: the REST ticker and the WebSocket stream, parsed from recorded responses."""

from __future__ import annotations

import datetime as dt

from kurs_collector.fakes import Blob, FakeHttpServer, FakeResponse, MakeFeed, drain
from kurs_common.observation import LIVE


async def test_kraken_rest_ticker(blob: Blob, provider: FakeHttpServer, make: MakeFeed) -> None:
    provider.route("/0/public/Ticker", FakeResponse(body=blob("kraken/ticker.json")))
    feed = make("kraken", provider.url)
    batches = await drain(feed)
    assert len(batches) == 1
    obs = {(o.base, o.quote): o for o in batches[0]}
    assert provider.requests[-1].query["pair"].split(",")[:3] == ["XBTUSD", "XBTEUR", "ETHUSD"]
    assert set(obs) == {
        ("BTC", "USD"),
        ("BTC", "EUR"),
        ("ETH", "USD"),
        ("EUR", "USD"),
        ("GBP", "USD"),
        ("USD", "JPY"),
        ("USD", "CAD"),
        ("USD", "CHF"),
        ("AUD", "USD"),
        ("USDT", "USD"),
        ("USDC", "USD"),
    }
    eur = obs[("EUR", "USD")]
    assert (eur.bid, eur.ask, eur.value, eur.kind) == ("1.03157", "1.03164", "1.031605", LIVE)
    assert obs[("BTC", "USD")].value == "97012.35"
    assert obs[("USDC", "USD")].value == "0.999995"
    # One observation time for the whole poll: the validator can cross within the batch.
    assert {o.observed_at for o in batches[0]} == {
        dt.datetime(2025, 1, 20, 12, 0, tzinfo=dt.UTC)
    }  # the clock
    assert feed.problems == []
