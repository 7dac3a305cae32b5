"""The gateway's in-memory copy of the latest rates, kept current by RatesService.StreamRates.

One upstream stream per gateway process (base = the pivot, every currency). Hot reads are
answered from here without a network hop; WebSocket clients are fed from the same stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common.fanout import Fanout, Subscription
from kurs_common.rate import Rate, RateKind
from kurs_common.timeutil import from_timestamp

log = logging.getLogger(__name__)

PIVOT = "EUR"
RECENT_CHANGES = 1024


@dataclass(frozen=True, slots=True)
class Change:
    sequence: int
    codes: frozenset[str]  # currencies whose pivot rate changed
    resync: bool = False  # a fresh snapshot replaced everything


def _entry(rate: rates_pb2.Rate) -> Rate:
    """A rate per the pivot as the rates service answered it (kurs_common.rate.Rate; the wire
    names neither the series nor the kind: source "", kind REFERENCE)."""
    return Rate(
        "",
        RateKind.REFERENCE,
        rate.currency,
        rate.value,
        dt.date.fromisoformat(rate.date),
        from_timestamp(rate.observed_at),
        tuple(rate.sources),
        rate.replay,
    )


class LiveSnapshot:
    def __init__(self, listener_queue: int = 256) -> None:
        self.entries: dict[str, Rate] = {}
        self.sequence = 0
        self.ready = False
        self.generation = 0  # bumps on every change; response caches key on it
        self.recent: deque[Change] = deque(maxlen=RECENT_CHANGES)
        self._fanout: Fanout[Change] = Fanout(listener_queue)
        self._day: dt.date | None = None
        self._watchers: list[Callable[[], None]] = []

    @property
    def day(self) -> dt.date | None:
        """The newest business day of any entry (kept on every change: read per cached request)."""
        return self._day

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` (synchronously, on the feed's task) after every change."""
        self._watchers.append(callback)

    def replace(self, sequence: int, rates: list[rates_pb2.Rate]) -> None:
        self.entries = {r.currency: _entry(r) for r in rates if r.currency != PIVOT}
        self._day = max((e.day for e in self.entries.values()), default=None)
        self._publish(Change(sequence, frozenset(self.entries), resync=True))
        self.ready = True

    def update(self, sequence: int, rates: list[rates_pb2.Rate]) -> None:
        day, recompute = self._day, False
        for r in rates:
            if r.currency != PIVOT:
                old = self.entries.get(r.currency)
                entry = self.entries[r.currency] = _entry(r)
                if day is None or entry.day > day:
                    day = entry.day
                elif old is not None and old.day == day and entry.day < day:
                    recompute = True  # the newest day's figure moved back (a correction): rare
        self._day = max((e.day for e in self.entries.values()), default=None) if recompute else day
        self._publish(Change(sequence, frozenset(r.currency for r in rates)))

    def _publish(self, change: Change) -> None:
        self.sequence = change.sequence
        self.generation += 1
        self.recent.append(change)
        self._fanout.publish(change)
        for callback in self._watchers:
            callback()

    def changed_since(self, sequence: int) -> frozenset[str] | None:
        """Currencies changed after `sequence`, or None when that is outside the recent window."""
        if sequence == self.sequence:
            return frozenset()
        if not self.recent or sequence > self.sequence or self.recent[0].sequence > sequence + 1:
            return None
        codes: set[str] = set()
        for change in self.recent:
            if change.sequence > sequence:
                if change.resync:
                    return None
                codes |= change.codes
        return frozenset(codes)

    def listen(self) -> contextlib.AbstractContextManager[Subscription[Change]]:
        """A bounded queue of changes for one WebSocket client (flagged `overflowed` when full)."""
        return self._fanout.subscribe()


class SnapshotFeed:
    """Consumes StreamRates forever (reconnecting with backoff) into a LiveSnapshot."""

    def __init__(self, stub: rates_pb2_grpc.RatesServiceStub, snapshot: LiveSnapshot) -> None:
        self.stub = stub
        self.snapshot = snapshot
        self.connected = False
        self.disconnected_at = time.monotonic()

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                call = self.stub.StreamRates(rates_pb2.StreamRatesRequest(base=PIVOT), wait_for_ready=True)
                async for message in call:
                    self.connected = True
                    delay = 0.2
                    kind = message.WhichOneof("event")
                    if kind == "snapshot":
                        self.snapshot.replace(message.sequence, list(message.snapshot.rates))
                    elif kind == "update":
                        self.snapshot.update(message.sequence, list(message.update.rates))
                log.warning("rates stream ended; reconnecting")
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "rates stream failed; reconnecting",
                    extra={"code": exc.code().name, "details": exc.details(), "retry_s": delay},
                )
            except Exception:  # never let the feed die silently: log it and reconnect
                log.exception("rates stream broke; reconnecting", extra={"retry_s": delay})
            self.connected = False
            self.disconnected_at = time.monotonic()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
