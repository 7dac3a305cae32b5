"""Fan-out of newly stored anomalies to StreamAnomalies subscribers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator

from kurs_validator.model import Anomaly

QUEUE_SIZE = 1_000


class AnomalySubscription:
    """One subscriber's queue; when it overflows the subscriber re-reads the store from its cursor."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Anomaly] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, anomaly: Anomaly) -> None:
        try:
            self.queue.put_nowait(anomaly)
        except asyncio.QueueFull:
            self.overflowed = True


class AnomalyHub:
    def __init__(self) -> None:
        self._subscribers: set[AnomalySubscription] = set()

    def publish(self, anomalies: Iterable[Anomaly]) -> None:
        for anomaly in anomalies:
            for sub in list(self._subscribers):
                sub.offer(anomaly)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[AnomalySubscription]:
        sub = AnomalySubscription()
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
