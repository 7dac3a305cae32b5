"""Accepting a batch: store it, update the latest rates, fan the change out.

Durable before acknowledged: a batch is answered only once the store has committed it. When the
store is unreachable (or times out) the batch is refused with UNAVAILABLE and nothing of it is
published; the caller keeps it and retries (the validator's outbox, the collector's
unacknowledged batch; see docs/architecture.md "Delivery guarantee"). The in-memory `LatestRates` keeps being
served from memory meanwhile, without the refused figures. Writes are idempotent (keys on
source/day/base/currency and source/currency/observed_at), so a batch whose first attempt did reach the
database before the connection broke is not stored twice when retried. Batches are written one at
a time, in arrival order, so a correction never overtakes its original.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from kurs_common.errors import InvalidArgument, Unavailable
from kurs_rates.book import LatestRates
from kurs_rates.model import Rate, RateKind, StoreUnavailable, WriteResult
from kurs_rates.queries import RateQueries
from kurs_rates.replication import REDIS_ERRORS, RedisReplication, Update
from kurs_rates.store import RateStore

log = logging.getLogger(__name__)

READ_YOUR_WRITES_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    inserted: int
    updated: int
    unchanged: int
    buffered: int  # always 0: nothing is acknowledged before it is stored
    sequence: int


class Ingestor:
    def __init__(
        self,
        store: RateStore,
        book: LatestRates,
        queries: RateQueries,
        reference_source: str,
        fanout: RedisReplication | None = None,
    ) -> None:
        self.store = store
        self.book = book
        self.queries = queries
        self.reference_source = reference_source
        self.fanout = fanout
        self.store_healthy = True
        self._lock = asyncio.Lock()

    @property
    def buffered(self) -> int:
        """Rates acknowledged but not yet stored: always 0 (nothing is acknowledged before it is
        stored); kept for the `kurs_rates_write_buffer_rates` gauge and dashboards."""
        return 0

    # -- the ingest path -----------------------------------------------------------------
    async def ingest(self, rates: list[Rate]) -> IngestOutcome:
        """Store a batch, then publish it; raise StoreUnavailable (nothing acknowledged) if the
        store cannot take it. Batches are written one at a time, in arrival order."""
        if not rates:  # every rate of the batch was refused field by field
            return IngestOutcome(0, 0, 0, 0, self.book.sequence)
        async with self._lock:
            try:
                result = await self.store.write(rates)
            except ValueError as exc:
                raise InvalidArgument("rates", str(exc)) from exc
            except (Unavailable, TimeoutError) as exc:
                self.mark_store(False, exc)
                log.warning(
                    "store unavailable: batch refused, the caller retries", extra={"rates": len(rates)}
                )
                raise StoreUnavailable(f"batch not stored, retry it ({type(exc).__name__}: {exc})") from exc
            self.mark_store(True)
            sequence = await self._after_write(result)
            return IngestOutcome(result.inserted, result.updated, result.unchanged, 0, sequence)

    async def _after_write(self, result: WriteResult) -> int:
        self.queries.note_published(r for r in result.changed if r.kind is RateKind.REFERENCE)
        latest_reference = None
        reference_changed = [
            r for r in result.changed if r.kind is RateKind.REFERENCE and r.source == self.reference_source
        ]
        if reference_changed:
            self.queries.invalidate()
            newest = max(r.day for r in reference_changed)
            current = self.book.reference_day
            if current is None or newest >= current:
                try:
                    latest_reference = await self.store.latest_reference(self.reference_source)
                except (Unavailable, TimeoutError):
                    latest_reference = self._reference_from_batch(reference_changed)
        return await self._publish(latest_reference, self._ticks(result.changed))

    def _ticks(self, rates: Sequence[Rate]) -> list[Rate]:
        return [r for r in rates if r.kind is RateKind.LIVE]

    def _reference_from_batch(self, rates: Sequence[Rate]) -> list[Rate] | None:
        """The reference set implied by a batch alone: its newest day merged over the current set."""
        mine = [r for r in rates if r.kind is RateKind.REFERENCE and r.source == self.reference_source]
        if not mine:
            return None
        newest = max(r.day for r in mine)
        current = self.book.reference_day
        if current is not None and newest < current:
            return None
        merged = dict(self.book.reference) if current is not None else {}
        merged.update((r.currency, r) for r in mine if r.day == newest)
        return list(merged.values())

    async def _publish(self, reference: list[Rate] | None, ticks: list[Rate]) -> int:
        """Apply an update to this replica's book and every other replica's; return the sequence."""
        if reference is None and not ticks:
            return self.book.sequence
        if self.fanout is None:
            self.book.apply(reference, ticks)
            return self.book.sequence
        changed = self.book.preview(reference, ticks)
        if not changed:
            return self.book.sequence
        update = Update(None if reference is None else tuple(reference), tuple(ticks), changed)
        if self.fanout.healthy and not self.fanout.pending:
            try:
                sequence = await self.fanout.publish(update)
            except REDIS_ERRORS as exc:
                self.fanout.mark_down(exc)
            else:
                # Our own consumer applies it; wait so a read right after the ingest sees it.
                if not await self.book.wait_for(sequence, READ_YOUR_WRITES_SECONDS):
                    log.warning("redis: own update not consumed in time", extra={"sequence": sequence})
                return sequence
        # Redis down: serve it locally now, publish it to the other replicas when Redis is back.
        self.book.apply(reference, ticks)  # the next local number (sealed when Redis is back)
        self.fanout.defer(update)
        return self.book.sequence

    def mark_store(self, healthy: bool, exc: BaseException | None = None) -> None:
        if healthy != self.store_healthy:
            if healthy:
                log.info("store reachable again")
            else:
                log.warning("store unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        self.store_healthy = healthy
