"""The latest snapshot held in memory, and the fan-out of its changes to subscribers.

The effective rate of a currency is the newer (by observation time) of the newest reference
fixing and the newest live tick. Every batch that changes at least one effective rate gets the
next sequence number and is published to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kurs_rates.model import RateKind, StoredRate

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 256


@dataclass(frozen=True, slots=True)
class ChangeSet:
    sequence: int
    rates: tuple[StoredRate, ...]  # the new effective rates of the currencies that changed


class Subscription:
    """One subscriber's queue. When it falls too far behind it is flagged for a resync."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[ChangeSet] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False

    def offer(self, change: ChangeSet) -> None:
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True


class LatestBook:
    def __init__(self) -> None:
        self.reference: dict[str, StoredRate] = {}
        self.live: dict[str, StoredRate] = {}
        self.sequence = 0
        self._subscribers: set[Subscription] = set()

    # -- reads ---------------------------------------------------------------------------
    def effective(self) -> dict[str, StoredRate]:
        out = dict(self.reference)
        for code, tick in self.live.items():
            ref = out.get(code)
            if ref is None or tick.observed_at > ref.observed_at:
                out[code] = tick
        return out

    # -- writes --------------------------------------------------------------------------
    def load(self, reference: Iterable[StoredRate], live: Iterable[StoredRate]) -> None:
        self.reference = {r.currency: r for r in reference}
        self.live = {r.currency: r for r in live}

    def apply(
        self, latest_reference: Iterable[StoredRate] | None, ticks: Iterable[StoredRate]
    ) -> ChangeSet | None:
        """Replace the reference part (when given) and merge live ticks; publish what changed."""
        before = self.effective()
        if latest_reference is not None:
            self.reference = {r.currency: r for r in latest_reference}
        for tick in ticks:
            if tick.kind is not RateKind.LIVE:
                continue
            current = self.live.get(tick.currency)
            if current is None or tick.observed_at >= current.observed_at:
                self.live[tick.currency] = tick
        after = self.effective()
        changed = tuple(
            rate
            for code, rate in sorted(after.items())
            if (old := before.get(code)) is None
            or old.value != rate.value
            or old.day != rate.day
            or old.observed_at != rate.observed_at
        )
        removed = before.keys() - after.keys()
        if not changed and not removed:
            return None
        self.sequence += 1
        change = ChangeSet(self.sequence, changed)
        for sub in list(self._subscribers):
            sub.offer(change)
        return change

    # -- subscriptions -------------------------------------------------------------------
    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        sub = Subscription()
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
