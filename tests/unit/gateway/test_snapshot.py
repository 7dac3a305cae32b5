from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from kurs.rates.v1 import rates_pb2
from kurs_gateway.fastpath import BodyCache
from kurs_gateway.snapshot import LiveSnapshot


def rate(code: str, value: str, day: str = "2026-10-30") -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date=day, observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


def test_changed_since_within_and_beyond_the_window() -> None:
    snap = LiveSnapshot()
    snap.replace(10, [rate("USD", "1.1"), rate("GBP", "0.8")])
    snap.update(11, [rate("USD", "1.2")])
    snap.update(12, [rate("JPY", "170")])
    assert snap.changed_since(12) == frozenset()
    assert snap.changed_since(11) == frozenset({"JPY"})
    assert snap.changed_since(10) == frozenset({"USD", "JPY"})
    assert snap.changed_since(9) is None  # before the snapshot: a resync is needed
    assert snap.changed_since(13) is None  # from the future (another server's numbering)


def test_listener_overflow_is_flagged() -> None:
    snap = LiveSnapshot(listener_queue=2)
    snap.replace(1, [rate("USD", "1.1")])
    with snap.listen() as listener:
        for seq in range(2, 6):
            snap.update(seq, [rate("USD", f"1.{seq}")])
        assert listener.overflowed
        assert listener.queue.qsize() == 2


def test_body_cache_live_entries_expire_on_change() -> None:
    snap = LiveSnapshot()
    snap.replace(1, [rate("USD", "1.1")])
    cache = BodyCache(snap, max_entries=2, history_ttl=60)
    cache.live("/rates/latest", b"", lambda: b"live")
    cache.store("/rates/historical", b"date=2025-01-01", b"hist")
    assert cache.lookup("/rates/latest", b"") == b"live"
    snap.update(2, [rate("USD", "1.2")])
    assert cache.lookup("/rates/latest", b"") is None
    assert cache.lookup("/rates/historical", b"date=2025-01-01") == b"hist"
    snap.update(3, [rate("USD", "1.3", day="2026-10-31")])  # a new business day
    assert cache.lookup("/rates/historical", b"date=2025-01-01") is None


def test_body_cache_is_bounded() -> None:
    snap = LiveSnapshot()
    cache = BodyCache(snap, max_entries=2, history_ttl=60)
    for i in range(3):
        cache.store("/p", str(i).encode(), b"x")
    assert cache.lookup("/p", b"0") is None
    assert cache.lookup("/p", b"2") == b"x"


def test_body_cache_keeps_within_its_byte_budget() -> None:
    snap = LiveSnapshot()
    cache = BodyCache(snap, max_entries=100, history_ttl=60, max_bytes=10, max_body=6)
    cache.store("/p", b"big", b"x" * 7)
    assert cache.lookup("/p", b"big") is None  # over max_body: never cached
    for i in range(3):
        cache.store("/p", str(i).encode(), b"x" * 4)
    assert cache.size == 8  # the oldest body was evicted to stay within 10 bytes
    assert cache.lookup("/p", b"0") is None
    assert cache.lookup("/p", b"2") == b"xxxx"
    cache.store("/p", b"2", b"yy")  # replacing an entry accounts for the old body
    assert cache.size == 6
