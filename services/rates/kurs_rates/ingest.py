"""Accepting a batch: store it, update the latest book, fan the change out.

When the store is unreachable (or times out) an accepted batch is kept in a bounded in-memory
buffer (at most `buffer_limit` rates; beyond that the batch is refused with UNAVAILABLE so the
caller retries) and written, in arrival order, as soon as the store answers again. Writes are
idempotent (keys on source/day/currency and source/currency/observed_at), so a batch whose first
attempt did reach the database before the connection broke is not stored twice. While batches
are buffered, later batches queue behind them, so a correction never overtakes its original.
The latest book (the hot path) is updated from the batch itself meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from kurs_common.errors import InvalidArgument, Unavailable
from kurs_rates.book import LatestBook
from kurs_rates.fanout import REDIS_ERRORS, RedisFanout, Update
from kurs_rates.model import RateKind, StoredRate, StoreUnavailable, WriteResult
from kurs_rates.queries import RateQueries
from kurs_rates.store import RateStore

log = logging.getLogger(__name__)

DEFAULT_BUFFER_LIMIT = 200_000
READ_YOUR_WRITES_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    inserted: int
    updated: int
    unchanged: int
    buffered: int  # rates accepted while the store was down, written later
    sequence: int


class Ingestor:
    def __init__(
        self,
        store: RateStore,
        book: LatestBook,
        queries: RateQueries,
        reference_source: str,
        fanout: RedisFanout | None = None,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        self.store = store
        self.book = book
        self.queries = queries
        self.reference_source = reference_source
        self.fanout = fanout
        self.buffer_limit = buffer_limit
        self.store_healthy = True
        self._lock = asyncio.Lock()
        self._pending: deque[list[StoredRate]] = deque()
        self._pending_rates = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        return self._pending_rates

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="rates-store-flusher")

    async def stop(self, drain_seconds: float = 0.0) -> None:
        if self._pending and drain_seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_seconds):
                    await self._drained.wait()
        if self._pending:
            log.error("stopping with unwritten buffered rates", extra={"rates": self._pending_rates})
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    # -- the ingest path -----------------------------------------------------------------
    async def ingest(self, rates: list[StoredRate]) -> IngestOutcome:
        if not rates:  # every rate of the batch was refused field by field
            return IngestOutcome(0, 0, 0, 0, self.book.sequence)
        async with self._lock:
            if not self._pending:
                try:
                    result = await self.store.write(rates)
                except ValueError as exc:
                    raise InvalidArgument("rates", str(exc)) from exc
                except (Unavailable, TimeoutError) as exc:
                    self._mark_store(False, exc)
                else:
                    self._mark_store(True)
                    sequence = await self._after_write(result)
                    return IngestOutcome(result.inserted, result.updated, result.unchanged, 0, sequence)
            if self._pending_rates + len(rates) > self.buffer_limit:
                raise StoreUnavailable(
                    f"store unavailable and the write buffer is full ({self._pending_rates} rates buffered)"
                )
            self._pending.append(rates)
            self._pending_rates += len(rates)
            self._drained.clear()
            self._wake.set()
            log.warning(
                "store unavailable: batch buffered",
                extra={"rates": len(rates), "buffered": self._pending_rates},
            )
            sequence = await self._publish(self._reference_from_batch(rates), self._ticks(rates))
            return IngestOutcome(0, 0, 0, len(rates), sequence)

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

    def _ticks(self, rates: Sequence[StoredRate]) -> list[StoredRate]:
        return [r for r in rates if r.kind is RateKind.LIVE]

    def _reference_from_batch(self, rates: Sequence[StoredRate]) -> list[StoredRate] | None:
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

    async def _publish(self, reference: list[StoredRate] | None, ticks: list[StoredRate]) -> int:
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
                self.fanout._down(exc)
            else:
                # Our own consumer applies it; wait so a read right after the ingest sees it.
                if not await self.book.wait_for(sequence, READ_YOUR_WRITES_SECONDS):
                    log.warning("redis: own update not consumed in time", extra={"sequence": sequence})
                return sequence
        # Redis down: serve it locally now, publish it to the other replicas when Redis is back.
        self.book.apply(reference, ticks, record=False)
        self.fanout.defer(update)
        return self.book.sequence

    # -- the write-behind buffer ---------------------------------------------------------
    async def _flush_loop(self) -> None:
        delay = 0.1
        while True:
            await self._wake.wait()
            while self._pending:
                batch = self._pending[0]
                try:
                    result = await self.store.write(batch)
                except (Unavailable, TimeoutError) as exc:
                    self._mark_store(False, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                except ValueError:
                    log.exception(
                        "buffered batch rejected by the store; dropped", extra={"rates": len(batch)}
                    )
                    result = WriteResult()
                except Exception as exc:  # unexpected: keep the batch (and the order), retry later
                    log.exception("writing a buffered batch failed; will retry")
                    self._mark_store(False, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.1
                async with self._lock:
                    self._pending.popleft()
                    self._pending_rates -= len(batch)
                    self._mark_store(True)
                    log.info(
                        "buffered batch written",
                        extra={
                            "inserted": result.inserted,
                            "updated": result.updated,
                            "left": self._pending_rates,
                        },
                    )
                    if not self._pending:
                        # Re-read the exact newest reference set now that everything is stored.
                        self.queries.invalidate()
                        with contextlib.suppress(Unavailable, TimeoutError):
                            latest = await self.store.latest_reference(self.reference_source)
                            await self._publish(latest, [])
            async with self._lock:
                if not self._pending:
                    self._wake.clear()
                    self._drained.set()

    def _mark_store(self, healthy: bool, exc: BaseException | None = None) -> None:
        if healthy != self.store_healthy:
            if healthy:
                log.info("store reachable again")
            else:
                log.warning("store unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        self.store_healthy = healthy
