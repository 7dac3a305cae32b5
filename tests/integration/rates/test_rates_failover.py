"""The rates service against real PostgreSQL and Redis: fan-out across replicas, resume, outages.

Outages go through TcpProxy (see conftest): the service talks to a loopback port the test owns;
the shared servers keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2

from kurs_rates.model import Rate, RateKind
from kurs_rates.replication import Update, rate_to_json
from kurs_rates.server import REDIS_HEALTH, STORE_HEALTH
from support.rates_replicas import Replica, accepted, fixing, next_message, until, values

from .conftest import REDIS_URL, TcpProxy

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_a_subscriber_on_one_replica_sees_updates_ingested_through_another(
    pg_dsn: str, redis_prefix: str, replicas: Callable[..., Awaitable[Replica]]
) -> None:
    a = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    b = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    await a.ingest(*fixing("2026-11-02", USD="1.1600", GBP="0.8800", JPY="178.00"))
    on_b = b.stream()
    first = await next_message(on_b)
    assert first.HasField("snapshot")
    assert values(first)["USD"] == "1.1600"

    reply = await a.ingest(accepted("USD", "1.1612", "2026-11-02T16:00:00+00:00"))
    assert (reply.inserted, reply.buffered) == (1, 0)
    update = await next_message(on_b)
    assert update.HasField("update")
    assert update.sequence == reply.sequence
    assert values(update) == {"USD": "1.1612"}
    assert (await b.latest("USD"))["USD"] == "1.1612"

    # Global sequence: an update through B is numbered after A's, and A's subscribers get it too.
    on_a = a.stream()
    await next_message(on_a)
    second = await b.ingest(accepted("GBP", "0.8812", "2026-11-02T16:00:01+00:00"))
    assert second.sequence == reply.sequence + 1
    assert values(await next_message(on_a)) == {"GBP": "0.8812"}
    assert values(await next_message(on_b)) == {"GBP": "0.8812"}

    # Resume on the other replica: only what was missed since the given sequence, as an update.
    resumed = a.stream(reply.sequence)
    missed = await next_message(resumed)
    assert missed.HasField("update")
    assert (missed.sequence, values(missed)) == (second.sequence, {"GBP": "0.8812"})
    # A sequence too far back (or unknown) gets a fresh snapshot instead.
    stale = b.stream(second.sequence + 1000)
    assert (await next_message(stale)).HasField("snapshot")
    for call in (on_a, on_b, resumed, stale):
        call.cancel()

    # A replica started later joins at the global sequence and can replay from the stream.
    c = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    assert (await c.latest("USD", "GBP")) == {"USD": "1.1612", "GBP": "0.8812"}
    late = c.stream(reply.sequence)
    caught_up = await next_message(late)
    assert (caught_up.sequence, values(caught_up)) == (second.sequence, {"GBP": "0.8812"})
    late.cancel()


async def test_redis_outage_degrades_fan_out_and_loses_nothing(
    redis_split: tuple[TcpProxy, Replica, Replica],
) -> None:
    proxy, a, b = redis_split
    await a.ingest(*fixing("2026-11-02", USD="1.1600", GBP="0.8800"))

    async def a_redis_up() -> bool:
        return bool(await a.status(REDIS_HEALTH) == SERVING)

    await until(a_redis_up, "A reports kurs.rates.redis SERVING")
    on_a, on_b = a.stream(), b.stream()
    await next_message(on_a)
    await next_message(on_b)

    await proxy.cut()

    async def a_redis_down() -> bool:
        return bool(await a.status(REDIS_HEALTH) == NOT_SERVING)

    await until(a_redis_down, "A reports kurs.rates.redis NOT_SERVING")
    assert await a.status("kurs.rates.v1.RatesService") == SERVING
    reply = await a.ingest(accepted("USD", "1.1620", "2026-11-02T16:05:00+00:00"))
    assert (reply.inserted, reply.buffered) == (1, 0)  # stored in PostgreSQL
    assert values(await next_message(on_a)) == {"USD": "1.1620"}  # local subscribers still served
    assert (await a.latest("USD"))["USD"] == "1.1620"
    assert [r.value for r in await b.service.store.latest_live()] == ["1.1620"]

    await proxy.restore()
    await until(a_redis_up, "A reports kurs.rates.redis SERVING again")
    # The update accepted during the outage reaches the other replica's subscribers.
    assert values(await next_message(on_b)) == {"USD": "1.1620"}
    assert (await b.latest("USD"))["USD"] == "1.1620"
    # And fan-out works normally again.
    after = await a.ingest(accepted("GBP", "0.8805", "2026-11-02T16:06:00+00:00"))
    assert values(await next_message(on_b)) == {"GBP": "0.8805"}
    assert after.sequence > reply.sequence
    on_a.cancel()
    on_b.cancel()


async def test_postgres_outage_refuses_writes_and_serves_the_snapshot(
    pg_dsn: str, pg_proxy: tuple[TcpProxy, str], replicas: Callable[..., Awaitable[Replica]]
) -> None:
    proxy, proxied_dsn = pg_proxy
    a = await replicas(proxied_dsn)
    await a.ingest(*fixing("2026-10-30", USD="1.1550", GBP="0.8790"))
    await a.ingest(*fixing("2026-11-02", USD="1.1600", GBP="0.8800"))
    on_a = a.stream()
    await next_message(on_a)

    await proxy.cut()

    # History needs the database: a prompt UNAVAILABLE, not a hang.
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await a.historical("2026-10-30")
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    # The latest snapshot keeps being served.
    assert await a.latest("USD", "GBP") == {"USD": "1.1600", "GBP": "0.8800"}
    # Durable before acknowledged: a batch the store cannot take is refused (the caller keeps it
    # and retries), and nothing of it is published.
    ticks = [
        accepted("USD", "1.1610", "2026-11-03T09:00:00+00:00"),
        accepted("USD", "1.1620", "2026-11-03T09:00:01+00:00"),
    ]
    batches = [(ticks[0],), (ticks[1], *fixing("2026-11-03", GBP="0.8810", USD="1.1615"))]
    for batch in batches:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await a.ingest(*batch)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry" in (refused.value.details() or "")
    assert await a.latest("USD", "GBP") == {"USD": "1.1600", "GBP": "0.8800"}
    reading = asyncio.ensure_future(next_message(on_a))
    await asyncio.sleep(0.3)
    assert not reading.done()  # no update for a batch that was not stored

    async def store_down() -> bool:
        return bool(await a.status(STORE_HEALTH) == NOT_SERVING)

    await until(store_down, "kurs.rates.store NOT_SERVING")
    assert await a.status("kurs.rates.v1.RatesService") == SERVING

    await proxy.restore()

    async def store_up() -> bool:
        return bool(await a.status(STORE_HEALTH) == SERVING)

    await until(store_up, "kurs.rates.store SERVING after the database came back")
    # The caller's retry is stored, published and acknowledged.
    first = await a.ingest(*batches[0])
    second = await a.ingest(*batches[1])
    assert (first.inserted, first.buffered) == (1, 0)
    assert (second.inserted, second.buffered) == (3, 0)
    assert values(await reading)["USD"] == "1.1610"
    # (the 15:00 fixing is newer than the 09:00 ticks, so it is the effective USD rate)
    assert await a.latest("USD", "GBP") == {"USD": "1.1615", "GBP": "0.8810"}
    conn = await asyncpg.connect(pg_dsn)
    try:
        live = await conn.fetch("SELECT currency, value, observed_at FROM live_rates ORDER BY observed_at")
        assert [(r["currency"], r["value"]) for r in live] == [("USD", "1.1610"), ("USD", "1.1620")]
        assert await conn.fetchval("SELECT count(*) FROM reference_rates WHERE day = '2026-11-03'") == 2
    finally:
        await conn.close()
    # Written exactly once: a second retry of the same batch adds nothing.
    again = await a.ingest(*batches[1])
    assert (again.inserted, again.updated, again.unchanged, again.buffered) == (0, 0, 3, 0)
    assert await a.historical("2026-11-03", "GBP") == {"GBP": "0.8810"}
    on_a.cancel()


async def test_embedded_store_resumes_from_a_sequence(
    replicas: Callable[..., Awaitable[Replica]], tmp_path: Path
) -> None:
    a = await replicas(f"sqlite:///{tmp_path / 'rates.sqlite3'}")
    await a.ingest(*fixing("2026-11-02", USD="1.1600", GBP="0.8800", JPY="178.00"))
    s1 = (await a.ingest(accepted("USD", "1.1601", "2026-11-02T16:00:00+00:00"))).sequence
    s2 = (await a.ingest(accepted("GBP", "0.8801", "2026-11-02T16:00:01+00:00"))).sequence
    s3 = (await a.ingest(accepted("USD", "1.1603", "2026-11-02T16:00:02+00:00"))).sequence
    assert (s2, s3) == (s1 + 1, s1 + 2)

    resumed = a.stream(s1)
    missed = await next_message(resumed)
    assert missed.HasField("update")
    assert (missed.sequence, values(missed)) == (s3, {"GBP": "0.8801", "USD": "1.1603"})

    filtered = a.stream(s2, "GBP")  # GBP did not change after s2: nothing to send yet
    up_to_date = a.stream(s3)
    s4 = (await a.ingest(accepted("GBP", "0.8804", "2026-11-02T16:00:03+00:00"))).sequence
    for call in (filtered, up_to_date, resumed):
        message = await next_message(call)
        assert (message.HasField("update"), message.sequence, values(message)) == (
            True,
            s4,
            {"GBP": "0.8804"},
        )

    for since in (0, s4 + 1):
        fresh = a.stream(since)
        assert (await next_message(fresh)).HasField("snapshot")
        fresh.cancel()
    for call in (filtered, up_to_date, resumed):
        with contextlib.suppress(Exception):
            call.cancel()


async def test_a_crash_during_a_store_outage_loses_no_acknowledged_rate(
    pg_dsn: str, pg_proxy: tuple[TcpProxy, str], replicas: Callable[..., Awaitable[Replica]]
) -> None:
    proxy, proxied_dsn = pg_proxy
    a = await replicas(proxied_dsn)
    acknowledged = await a.ingest(
        *fixing("2026-11-02", USD="1.1600"), accepted("USD", "1.1601", "2026-11-02T16:00:00+00:00")
    )
    assert (acknowledged.inserted, acknowledged.buffered) == (2, 0)
    await proxy.cut()
    unacknowledged = accepted("USD", "1.1602", "2026-11-02T16:00:01+00:00")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await a.ingest(unacknowledged)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # The process dies (nothing left to drain: the refused batch is the caller's to retry).
    await a.close()
    await proxy.restore()

    b = await replicas(pg_dsn)
    # Every acknowledged rate is there; the refused one is not, until the caller retries it.
    assert [r.value for r in await b.service.store.latest_live()] == ["1.1601"]
    retry = await b.ingest(unacknowledged)
    assert (retry.inserted, retry.buffered) == (1, 0)
    assert (await b.latest("USD"))["USD"] == "1.1602"


async def test_a_gap_in_the_stream_resyncs_subscribers_with_a_snapshot(
    pg_dsn: str, redis_prefix: str, replicas: Callable[..., Awaitable[Replica]]
) -> None:
    a = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    await a.ingest(*fixing("2026-11-02", USD="1.1600", GBP="0.8800"))
    on_a = a.stream()
    await next_message(on_a)
    # Another writer's updates were trimmed away before this replica read them: the stream
    # jumps ahead and only the shared latest snapshot (the hash) knows the new USD rate.
    at = dt.datetime(2026, 11, 2, 17, 0, tzinfo=dt.UTC)
    usd = Rate("market", RateKind.LIVE, "USD", "1.1700", at.date(), at, ("market",))
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        seq = await client.incrby(f"{redis_prefix}seq", 5)
        await client.hset(f"{redis_prefix}latest", "USD", json.dumps(rate_to_json(usd)))
        await client.xadd(
            f"{redis_prefix}stream", {"u": Update(None, (usd,), (usd,)).encode()}, id=f"{seq}-0"
        )
    finally:
        await client.aclose()
    message = await next_message(on_a)
    assert message.HasField("snapshot")
    assert values(message)["USD"] == "1.1700"
    await until(lambda: _true(a.service.book.sequence == seq), "replica caught up with the stream")
    assert (await a.latest("USD"))["USD"] == "1.1700"
    on_a.cancel()


async def _true(value: bool) -> bool:
    return value


async def test_a_query_that_times_out_is_deadline_exceeded_not_stuck(
    pg_dsn: str, replicas: Callable[..., Awaitable[Replica]]
) -> None:
    a = await replicas(pg_dsn)  # pg_statement_timeout=2.0
    await a.ingest(*fixing("2026-11-02", USD="1.1600"))
    blocker = await asyncpg.connect(pg_dsn)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE reference_rates IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await a.historical("2026-11-02")
            assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "did not answer in time" in (failure.value.details() or "")
            assert (await a.latest("USD"))["USD"] == "1.1600"  # the hot path is not blocked
    finally:
        await blocker.close()
