"""PostgreSQL-specific behaviour: migrations, partitions, audit rows, timeouts and outages."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kurs_rates.model import Rate, RateKind, StoreUnavailable
from kurs_rates.pg_schema import Migration, bundled_migrations, migrate
from kurs_rates.pg_store import PostgresRateStore

from .conftest import TcpProxy

pytestmark = pytest.mark.integration


def ref(day: str, currency: str, value: str) -> Rate:
    d = dt.date.fromisoformat(day)
    return Rate("ecb", RateKind.REFERENCE, currency, value, d, dt.datetime.combine(d, dt.time(15), dt.UTC))


@pytest.fixture
async def db(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


async def tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def test_replicas_starting_together_migrate_once(pg_dsn: str, db: asyncpg.Connection) -> None:
    stores = [PostgresRateStore(pg_dsn) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        rows = await db.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in bundled_migrations()
        ]
        assert {"reference_rates", "live_rates", "rate_observations", "live_latest", "reference_ranges"} <= (
            await tables(db)
        )
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_failing_migration_leaves_the_schema_as_it_was(db: asyncpg.Connection) -> None:
    good = bundled_migrations()
    assert await migrate(db, good) == [m.version for m in good]
    before = await tables(db)
    broken = Migration(len(good) + 1, "broken", "CREATE TABLE half_done (a int); ALTER TABLE nope ADD b int;")
    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(db, [*good, broken])
    assert await tables(db) == before
    assert await db.fetchval("SELECT max(version) FROM schema_migrations") == len(good)
    assert await migrate(db, good) == []


async def migrate_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m kurs_rates migrate` in a child process with `env`."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kurs_rates", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_migrate_command(pg_dsn: str, db: asyncpg.Connection) -> None:
    env = {**os.environ, "KURS_DATABASE_URL": pg_dsn, "KURS_RATES_LOG_LEVEL": "WARNING"}
    env.pop("KURS_RATES_DATABASE_URL", None)
    first = await migrate_command(env)
    assert first.returncode == 0, first.stderr
    assert f"applied {[m.version for m in bundled_migrations()]}" in first.stdout
    second = await migrate_command(env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert "reference_rates" in await tables(db)


async def test_yearly_partitions_are_created_as_needed(pg_dsn: str, db: asyncpg.Connection) -> None:
    store = PostgresRateStore(pg_dsn)
    await store.open()
    try:
        tick = Rate(
            "replay",
            RateKind.LIVE,
            "USD",
            "1.1",
            dt.date(2031, 5, 1),
            dt.datetime(2031, 5, 1, 9, tzinfo=dt.UTC),
        )
        await store.write([ref("1999-01-04", "USD", "1.1789"), ref("2026-01-02", "USD", "1.17"), tick])
        names = await tables(db)
        assert {"reference_rates_y1999", "reference_rates_y2026", "live_rates_y2031"} <= names
        assert "reference_rates_y2000" not in names
        where = await db.fetch(
            "SELECT tableoid::regclass::text AS part, day FROM reference_rates ORDER BY day"
        )
        assert [(r["part"], r["day"].year) for r in where] == [
            ("reference_rates_y1999", 1999),
            ("reference_rates_y2026", 2026),
        ]
        # A second store (another replica) finds the existing partitions and reuses them.
        other = PostgresRateStore(pg_dsn)
        await other.open()
        await other.write([ref("1999-01-05", "USD", "1.1790")])
        await other.close()
    finally:
        await store.close()


async def test_every_received_row_is_kept_for_audit(pg_dsn: str, db: asyncpg.Connection) -> None:
    store = PostgresRateStore(pg_dsn)
    await store.open()
    try:
        batch = [ref("2025-01-15", "USD", "1.0830"), ref("2025-01-15", "GBP", "0.83380")]
        await store.write(batch)
        await store.write(batch)
        await store.write([ref("2025-01-15", "USD", "1.0831")])
        rows = await db.fetch("SELECT currency, value FROM rate_observations ORDER BY id")
        assert [(r["currency"], r["value"]) for r in rows] == [
            ("USD", "1.0830"),
            ("GBP", "0.83380"),
            ("USD", "1.0830"),
            ("GBP", "0.83380"),
            ("USD", "1.0831"),
        ]
        assert await db.fetchval("SELECT count(*) FROM reference_rates") == 2
    finally:
        await store.close()


async def test_a_statement_that_times_out_becomes_timeout_error(pg_dsn: str, db: asyncpg.Connection) -> None:
    store = PostgresRateStore(pg_dsn, statement_timeout=0.3)
    await store.open()
    try:
        await store.write([ref("2025-01-15", "USD", "1.0830")])
        async with db.transaction():
            await db.execute("LOCK TABLE reference_rates IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(TimeoutError):
                await store.rates_on("ecb", dt.date(2025, 1, 15))
        assert await store.rates_on("ecb", dt.date(2025, 1, 15)) == {"USD": "1.0830"}
    finally:
        await store.close()


async def test_database_outage_fails_fast_and_recovers(pg_proxy: tuple[TcpProxy, str]) -> None:
    proxy, dsn = pg_proxy
    store = PostgresRateStore(dsn, connect_timeout=1.0)
    await store.open()
    try:
        await store.write([ref("2025-01-15", "USD", "1.0830")])
        await proxy.cut()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.rates_on("ecb", dt.date(2025, 1, 15)), 15)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.write([ref("2025-01-16", "USD", "1.09")]), 15)
        await proxy.restore()
        assert await store.rates_on("ecb", dt.date(2025, 1, 15)) == {"USD": "1.0830"}
        assert await store.day_on_or_before("ecb", dt.date(2025, 12, 31)) == dt.date(2025, 1, 15)
    finally:
        await store.close()


async def test_replicas_writing_the_same_batch_at_once_classify_exactly(pg_dsn: str) -> None:
    stores = [PostgresRateStore(pg_dsn) for _ in range(2)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        start = dt.date(2024, 1, 1)
        batch = [
            ref((start + dt.timedelta(days=d)).isoformat(), c, "1.5")
            for d in range(100)
            for c in ("USD", "GBP")
        ]
        results = await asyncio.gather(*(s.write(batch) for s in stores))
        assert sorted((r.inserted, r.updated, r.unchanged) for r in results) == [(0, 0, 200), (200, 0, 0)]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_close_terminates_busy_connections_after_the_close_timeout(
    pg_dsn: str, db: asyncpg.Connection
) -> None:
    store = PostgresRateStore(pg_dsn, close_timeout=0.2)
    await store.open()
    held = await store.pool.acquire()  # never released: a graceful pool close would wait forever
    pid = held.get_server_pid()
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(store.close(), 4.0)  # the former fixed 5 s would not fit in this
    assert asyncio.get_running_loop().time() - started < 2.0
    for _ in range(50):  # the terminated backend leaves pg_stat_activity
        if not await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"backend {pid} still connected")
