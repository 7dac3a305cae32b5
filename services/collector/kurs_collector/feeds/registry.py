"""Adapter name (the `adapter` key of a sources.toml table) -> feed class."""

from __future__ import annotations

from kurs_collector.feeds.base import HttpFeed, MarketFeed
from kurs_collector.feeds.binance import BinanceFeed, BinanceStreamFeed
from kurs_collector.feeds.bitstamp import BitstampFeed, BitstampStreamFeed
from kurs_collector.feeds.boc import BocFeed
from kurs_collector.feeds.boe import BoeFeed
from kurs_collector.feeds.cbr import CbrFeed
from kurs_collector.feeds.cnb import CnbApiFeed, CnbFeed
from kurs_collector.feeds.coinbase import CoinbaseFeed, CoinbaseStreamFeed
from kurs_collector.feeds.ecb import Ecb90dFeed, EcbDailyFeed, EcbSdmxFeed
from kurs_collector.feeds.fed import FedH10Feed, FredFeed
from kurs_collector.feeds.kraken import KrakenFeed, KrakenStreamFeed
from kurs_collector.feeds.nbp import NbpTableAFeed, NbpTableBFeed
from kurs_collector.feeds.norges import NorgesFeed
from kurs_collector.feeds.rba import RbaFeed
from kurs_collector.feeds.stream import StreamFeed

NetworkFeedClass = type[HttpFeed] | type[MarketFeed] | type[StreamFeed]

ADAPTERS: dict[str, NetworkFeedClass] = {
    cls.adapter: cls
    for cls in (
        EcbDailyFeed,
        Ecb90dFeed,
        EcbSdmxFeed,
        BocFeed,
        BoeFeed,
        FredFeed,
        FedH10Feed,
        NorgesFeed,
        CnbFeed,
        CnbApiFeed,
        NbpTableAFeed,
        NbpTableBFeed,
        RbaFeed,
        CbrFeed,
        KrakenFeed,
        KrakenStreamFeed,
        CoinbaseFeed,
        CoinbaseStreamFeed,
        BinanceFeed,
        BinanceStreamFeed,
        BitstampFeed,
        BitstampStreamFeed,
    )
}
