"""In-process subscriber queues: one publisher, every subscriber gets its own bounded queue.

The one primitive for handing an item to many in-process consumers (StreamRates subscribers of
`LatestRates`, the validator's anomaly hub, the gateway's snapshot listeners and alert events).
Not to be confused with the rates service's Redis replication across replicas
(kurs_rates.replication) or the gateway's WebSocket broadcaster (kurs_gateway.broadcast), which
encodes a message once per view for thousands of sockets.

A subscriber that falls behind is not allowed to hold memory or slow the publisher: when its
queue is full the item is dropped and the subscription is flagged `overflowed`, and the
subscriber is expected to resynchronise (send a fresh snapshot, re-read from a cursor, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscription(Generic[T]):
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(size)
        self.overflowed = False

    def offer(self, item: T) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class Fanout(Generic[T]):
    """A publisher's set of subscriptions; `publish` offers an item to every bounded queue."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscription[T]] = set()

    def publish(self, item: T) -> None:
        for sub in list(self._subscribers):
            sub.offer(item)

    def mark_all_overflowed(self) -> None:
        """Make every subscriber resynchronise (after the publisher lost track of changes)."""
        for sub in list(self._subscribers):
            sub.overflowed = True

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription[T]]:
        sub: Subscription[T] = Subscription(self.queue_size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def __len__(self) -> int:
        return len(self._subscribers)
