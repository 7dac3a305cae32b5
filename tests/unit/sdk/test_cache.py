"""TtlCache: fresh within the TTL, the last good value afterwards (within stale_max), LRU bound."""

from __future__ import annotations

from kurs_client.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fresh_until_the_ttl_then_only_last_good() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(ttl=1800, clock=clock)
    cache.put("k", "v")
    clock.now += 1799
    assert cache.fresh("k") == "v"
    clock.now += 1
    assert cache.fresh("k") is None
    assert cache.last_good("k") == ("v", 1800)
    assert cache.fresh("other") is None
    assert cache.last_good("other") is None


def test_stale_max_bounds_the_last_good_value() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(ttl=10, stale_max=100, clock=clock)
    cache.put("k", "v")
    clock.now += 100
    assert cache.last_good("k") == ("v", 100)
    clock.now += 1
    assert cache.last_good("k") is None


def test_the_oldest_stored_entry_is_evicted() -> None:
    cache: TtlCache[int] = TtlCache(ttl=10, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)  # re-stored: now the newest
    cache.put("c", 4)
    assert (cache.fresh("a"), cache.fresh("b"), cache.fresh("c")) == (3, None, 4)
    assert len(cache) == 2


def test_ttl_zero_disables_fresh_answers_but_keeps_the_last_good() -> None:
    cache: TtlCache[int] = TtlCache(ttl=0)
    cache.put("a", 1)
    assert cache.fresh("a") is None
    assert cache.last_good("a") is not None
