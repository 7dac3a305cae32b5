from __future__ import annotations

from kurs_gateway.guard import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_waits_for_refill() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == 0.5  # one token comes back after 1/rate seconds
    assert buckets.take("b") == 0.0  # clients are independent
    clock.now = 0.5
    assert buckets.take("a") == 0.0
