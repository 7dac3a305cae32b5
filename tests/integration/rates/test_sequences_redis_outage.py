"""Stream sequences through a Redis outage: every change gets its own number, none repeats, a
resume is exact or a fresh snapshot (issue #17: an empty update for 29 changed currencies, then 15
updates under one number and a gap).

Redis is cut for one replica only, through TcpProxy (see conftest); the shared server keeps running.
"""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2

from kurs.rates.v1 import rates_pb2
from kurs_rates.server import REDIS_HEALTH
from support.rates_replicas import Replica, accepted, fixing, next_message, until, values

from .conftest import TcpProxy

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

CODES = [f"{a}{b}X" for a in "ABCDEFGHIJ" for b in "ABC"][:30]  # 30 made-up currency codes


async def has(replica: Replica, codes: list[str]) -> bool:
    return set(await replica.latest()) >= set(codes)


def kind(message: rates_pb2.StreamRatesResponse) -> str:
    return str(message.WhichOneof("event"))


async def test_outage_numbers_every_change_and_resumes_exactly(
    redis_split: tuple[TcpProxy, Replica, Replica],
) -> None:
    proxy, a, b = redis_split
    await a.ingest(*fixing("2026-11-02", **dict.fromkeys(CODES, "1.5000")))

    async def a_redis(state: int) -> bool:
        return bool(await a.status(REDIS_HEALTH) == state)

    await until(lambda: a_redis(SERVING), "A reports Redis SERVING")
    await until(lambda: has(b, CODES), "B has the fixing")
    on_a, on_b = a.stream(), b.stream()
    first_a, first_b = await next_message(on_a), await next_message(on_b)
    assert (kind(first_a), kind(first_b)) == ("snapshot", "snapshot")
    start = first_a.sequence
    assert first_b.sequence == start

    await proxy.cut()
    await until(lambda: a_redis(NOT_SERVING), "A reports Redis NOT_SERVING")
    # 15 batches changing 29 currencies, while A cannot reach Redis.
    changed: dict[str, str] = {}
    for i in range(15):
        batch = {CODES[2 * i]: f"1.6{i:02d}", CODES[2 * i + 1]: f"1.7{i:02d}"} if i < 14 else {}
        if i == 14:
            batch = {CODES[28]: "1.8000"}
        await a.ingest(*(accepted(c, v, f"2026-11-02T16:{i:02d}:00+00:00") for c, v in batch.items()))
        changed.update(batch)
    assert len(changed) == 29
    sequences = []
    for _ in range(15):
        message = await next_message(on_a)
        assert kind(message) == "update"
        sequences.append(message.sequence)
    assert sequences == list(range(start + 1, start + 16))  # one number per change, no repeat

    # A resume on A from before the outage is exact: one update with all 29 currencies.
    resumed = a.stream(start)
    message = await next_message(resumed)
    assert kind(message) == "update"
    assert message.sequence == start + 15
    assert values(message) == changed
    resumed.cancel()
    # B never saw those numbers: a resume there from one of them is a fresh snapshot.
    elsewhere = b.stream(start + 3)
    assert kind(await next_message(elsewhere)) == "snapshot"
    elsewhere.cancel()

    await proxy.restore()
    await until(lambda: a_redis(SERVING), "A reports Redis SERVING again")
    # B's subscribers get everything A accepted during the outage in one exact update, numbered
    # above anything A's subscribers saw.
    caught_up = await next_message(on_b)
    assert kind(caught_up) == "update"
    assert values(caught_up) == changed
    assert caught_up.sequence > start + 15
    # Fan-out is normal again, and both streams go on strictly increasing, with one number.
    await a.ingest(accepted(CODES[29], "1.9000", "2026-11-02T17:00:00+00:00"))
    after_a, after_b = await next_message(on_a), await next_message(on_b)
    assert values(after_a) == values(after_b) == {CODES[29]: "1.9000"}
    assert after_a.sequence == after_b.sequence > caught_up.sequence
    # A's local numbers are sealed now: a resume from one of them is a fresh snapshot on A too,
    # and a resume from a global number is exact on both replicas.
    sealed = a.stream(start + 7)
    assert kind(await next_message(sealed)) == "snapshot"
    sealed.cancel()
    for replica in (a, b):
        exact = replica.stream(caught_up.sequence)
        message = await next_message(exact)
        assert (kind(message), values(message)) == ("update", {CODES[29]: "1.9000"})
        exact.cancel()
    on_a.cancel()
    on_b.cancel()


async def test_both_replicas_numbering_locally_resync_above_both(
    redis_split: tuple[TcpProxy, Replica, Replica],
) -> None:
    """A split: A cannot reach Redis, B can and publishes; A's local numbers overlap B's global
    ones. After Redis returns nobody's subscriber sees a number twice or a partial resume."""
    proxy, a, b = redis_split
    await a.ingest(*fixing("2026-11-02", **dict.fromkeys(CODES[:4], "1.5000")))

    async def a_redis(state: int) -> bool:
        return bool(await a.status(REDIS_HEALTH) == state)

    await until(lambda: a_redis(SERVING), "A reports Redis SERVING")
    await until(lambda: has(b, CODES[:4]), "B has the fixing")
    on_a, on_b = a.stream(), b.stream()
    start = (await next_message(on_a)).sequence
    assert (await next_message(on_b)).sequence == start

    await proxy.cut()
    await until(lambda: a_redis(NOT_SERVING), "A reports Redis NOT_SERVING")
    await a.ingest(accepted(CODES[0], "1.6000", "2026-11-02T16:00:00+00:00"))
    await a.ingest(accepted(CODES[1], "1.6000", "2026-11-02T16:01:00+00:00"))
    await b.ingest(accepted(CODES[2], "1.7000", "2026-11-02T16:02:00+00:00"))
    seen_a = [(await next_message(on_a)).sequence for _ in range(2)]
    seen_b = [(await next_message(on_b)).sequence]
    assert seen_a == [start + 1, start + 2]
    assert seen_b == [start + 1]  # the same number, different changes: the split itself

    await proxy.restore()
    await until(lambda: a_redis(SERVING), "A reports Redis SERVING again")
    expected = {CODES[0]: "1.6000", CODES[1]: "1.6000", CODES[2]: "1.7000", CODES[3]: "1.5000"}
    for call, seen in ((on_a, seen_a), (on_b, seen_b)):
        while True:
            message = await next_message(call)
            assert message.sequence > seen[-1]
            seen.append(message.sequence)
            if kind(message) == "snapshot" or message.sequence >= start + 3:
                break
    assert await a.latest(*CODES[:4]) == expected
    assert await b.latest(*CODES[:4]) == expected
    # A resume from a number of the split is a fresh snapshot on either replica.
    for replica in (a, b):
        call = replica.stream(start + 1)
        message = await next_message(call)
        assert kind(message) == "snapshot"
        assert values(message) == expected
        call.cancel()
    on_a.cancel()
    on_b.cancel()
