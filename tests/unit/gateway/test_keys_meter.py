"""The meter: exact limits on one gateway, the documented overshoot bound across several."""

from __future__ import annotations

import asyncio
import datetime as dt

from kurs_gateway.keys.meter import Limits, LocalBackend, Meter, Report, Totals


class Clock:
    def __init__(self, moment: str = "2026-03-20T10:00:00") -> None:
        self.now = dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC).timestamp()

    def __call__(self) -> float:
        return self.now


class SharedBackend(LocalBackend):
    """One in-memory 'Redis' shared by several meters, answering after a delay like a network."""

    shared = True

    def __init__(self, clock: Clock, delay: float = 0.001) -> None:
        super().__init__(clock)
        self.delay = delay
        self.calls = 0

    async def apply(self, reports: list[Report]) -> list[Totals]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return await super().apply(reports)


async def test_one_gateway_enforces_the_daily_quota_exactly_and_counts_by_class() -> None:
    clock = Clock()
    meter = Meter(LocalBackend(clock), clock=clock)
    limits = Limits(per_day=5)
    verdicts = [meter.try_admit("k", limits, "read" if i % 2 else "bulk") for i in range(7)]
    assert [v.allowed for v in verdicts if v] == [True] * 5 + [False] * 2
    assert verdicts[-1] is not None
    assert verdicts[-1].reason == "day"
    assert 0 < verdicts[-1].retry_after <= 14 * 3600  # until midnight UTC
    today, month = await meter.usage("k")
    assert today == {"bulk": 3, "read": 2, "_total": 5}
    assert month == today
    clock.now += 14 * 3600  # the next day
    assert meter.try_admit("k", limits, "read") == (True, "", 0.0)
    today, month = await meter.usage("k")
    assert today["_total"] == 1
    assert month["_total"] == 6


async def test_uncounted_requests_spend_tokens_but_not_the_quota() -> None:
    clock = Clock()
    meter = Meter(LocalBackend(clock), clock=clock)
    limits = Limits(rate=1.0, burst=2, per_day=10)
    assert meter.try_admit("k", limits, None) == (True, "", 0.0)
    assert meter.try_admit("k", limits, "read") == (True, "", 0.0)
    refused = meter.try_admit("k", limits, "read")
    assert refused is not None
    assert (refused.allowed, refused.reason) == (False, "rate")
    assert refused.retry_after == 1.0
    clock.now += 1.0
    assert meter.try_admit("k", limits, "read") == (True, "", 0.0)
    today, _ = await meter.usage("k")
    assert today["_total"] == 2


async def test_the_monthly_period_starts_on_the_refresh_day() -> None:
    clock = Clock("2026-03-13T23:59:00")
    meter = Meter(LocalBackend(clock), clock=clock, refresh_day=14)
    limits = Limits(per_month=1)
    assert meter.try_admit("k", limits, "read") == (True, "", 0.0)
    assert meter.try_admit("k", limits, "read") == (False, "month", 60.0)
    clock.now += 60
    assert meter.today()[1] == "2026-03-14"
    assert meter.try_admit("k", limits, "read") == (True, "", 0.0)


async def run_gateways(gateways: int, batch: int, quota: int, attempts: int) -> tuple[int, SharedBackend]:
    clock = Clock()
    backend = SharedBackend(clock)
    meters = [Meter(backend, batch=batch, interval=0.002, clock=clock) for _ in range(gateways)]
    tasks = [asyncio.create_task(m.run()) for m in meters]
    limits = Limits(per_day=quota)
    admitted = 0

    async def client(meter: Meter) -> None:
        nonlocal admitted
        for _ in range(attempts):
            verdict = await meter.admit("k", limits, "read")
            admitted += verdict.allowed
            await asyncio.sleep(0)

    await asyncio.gather(*(client(m) for m in meters))
    for m in meters:
        await m.flush()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return admitted, backend


async def test_gateways_sharing_a_backend_stay_within_the_documented_bound() -> None:
    admitted, backend = await run_gateways(gateways=3, batch=8, quota=100, attempts=200)
    assert 100 <= admitted <= 100 - 1 + 3 * 8
    today, _ = await backend.read("k", "2026-03-20", "2026-03-01")
    assert today["_total"] == admitted  # every admitted request was counted once
    assert backend.calls < admitted  # batches, not a round trip per request


async def test_without_a_limit_nothing_waits_for_the_backend() -> None:
    clock = Clock()
    backend = SharedBackend(clock, delay=10.0)
    meter = Meter(backend, batch=2, clock=clock)
    assert all(meter.try_admit("k", Limits(), "read") for _ in range(50))
