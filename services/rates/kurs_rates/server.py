"""Assemble the rates service: store -> latest book -> queries -> servicers -> gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_common.grpcserver import RunningServer, start_server
from kurs_rates.book import LatestBook
from kurs_rates.queries import RateQueries
from kurs_rates.servicer import IngestServicer, RatesServicer
from kurs_rates.settings import RatesSettings
from kurs_rates.sqlite_store import SqliteRateStore
from kurs_rates.store import RateStore

log = logging.getLogger(__name__)


def open_store(url: str) -> RateStore:
    if url.startswith("sqlite:///"):
        return SqliteRateStore(Path(url.removeprefix("sqlite:///")))
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


@dataclass
class RatesService:
    store: RateStore
    book: LatestBook
    grpc: RunningServer

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        await self.grpc.stop(grace)
        await self.store.close()


async def start(settings: RatesSettings, store: RateStore | None = None) -> RatesService:
    store = store or open_store(settings.database_url)
    await store.open()
    book = LatestBook()
    book.load(await store.latest_reference(settings.reference_source), await store.latest_live())
    queries = RateQueries(store, book, settings.reference_source)
    rates = RatesServicer(queries, book)
    ingest = IngestServicer(store, book, queries, settings.reference_source)

    def register(server: object) -> list[str]:
        rates_pb2_grpc.add_RatesServiceServicer_to_server(rates, server)
        ingest_pb2_grpc.add_RatesIngestServiceServicer_to_server(ingest, server)
        return [
            rates_pb2.DESCRIPTOR.services_by_name["RatesService"].full_name,
            ingest_pb2.DESCRIPTOR.services_by_name["RatesIngestService"].full_name,
        ]

    running = await start_server(settings.address, register)
    log.info("rates service ready", extra={"currencies": len(book.reference), "port": running.port})
    return RatesService(store, book, running)
