"""A small thread-safe TTL cache that also keeps the last good value of every key.

`fresh(key)` answers while an entry is younger than `ttl`; `last_good(key)` answers any entry
younger than `stale_max` (None: any age), for the last step of the fallback chain. The least
recently stored entry is evicted beyond `max_entries`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl: float,
        max_entries: int = 1024,
        stale_max: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.stale_max = stale_max
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = (self._clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def fresh(self, key: Hashable) -> V | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self.ttl:
            return None
        return entry[1]

    def last_good(self, key: Hashable) -> tuple[V, float] | None:
        """(value, age in seconds) of the newest entry, however old (within stale_max)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        age = self._clock() - entry[0]
        if self.stale_max is not None and age > self.stale_max:
            return None
        return entry[1], age

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
