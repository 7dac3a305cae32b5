"""Data stored before the blended series (schema 1) migrates forward, on SQLite and PostgreSQL:
every old row becomes the blend (the ECB's first where two sources had one), the ECB's rows stay
the ECB's own, and other publishers' re-based rows leave their publisher."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from kurs_rates.model import Figure
from kurs_rates.pg_schema import bundled_migrations, migrate
from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.sqlite_store import MIGRATIONS, SqliteRateStore

pytestmark = pytest.mark.integration

DAY = dt.date(2025, 1, 15)
# (source, day, currency, value per EUR, sources) as schema 1 stored them
OLD_ROWS = [
    ("ecb", "2025-01-15", "USD", "1.0316", '["ecb"]'),
    ("ecb", "2025-01-15", "GBP", "0.8424", '["ecb"]'),
    ("nbp", "2025-01-15", "USD", "1.0317", '["ecb", "nbp"]'),  # lost the consensus to the ECB's
    ("nbp", "2025-01-15", "VND", "26211.5", '["nbp"]'),  # only NBP had it: re-based per EUR
]


def expected_blend() -> dict[str, str]:
    return {"USD": "1.0316", "GBP": "0.8424", "VND": "26211.5"}


async def check(store: SqliteRateStore | PostgresRateStore) -> None:
    blend = {r.currency: r.value for r in await store.as_of("blend", DAY)}
    assert blend == expected_blend()
    assert await store.figures_on("ecb", DAY) == [
        Figure("EUR", "GBP", "0.8424"),
        Figure("EUR", "USD", "1.0316"),
    ]
    assert await store.figures_on("nbp", DAY) == []
    publishers = {p.source: {c.code for c in p.currencies} for p in await store.publishers()}
    assert publishers == {"blend": {"EUR", "GBP", "USD", "VND"}, "ecb": {"EUR", "GBP", "USD"}}
    assert [r.code for r in await store.currency_ranges("blend")] == ["GBP", "USD", "VND"]


async def test_sqlite_schema_1_migrates_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        for statement in filter(str.strip, MIGRATIONS[0].split(";")):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.executemany(
            "INSERT INTO reference_rates (source, day, currency, value, observed_at, sources) "
            "VALUES (?, ?, ?, ?, '2025-01-15T15:00:00+00:00', ?)",
            [(s, d, c, v, j) for s, d, c, v, j in OLD_ROWS],
        )
    store = SqliteRateStore(path)
    await store.open()
    try:
        await check(store)
    finally:
        await store.close()


async def test_postgresql_schema_1_migrates_forward(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await migrate(conn, bundled_migrations()[:1])
        await conn.execute(
            "CREATE TABLE reference_rates_y2025 PARTITION OF reference_rates "
            "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
        )
        for source, day, currency, value, sources in OLD_ROWS:
            when = dt.date.fromisoformat(day)
            await conn.execute(
                "INSERT INTO reference_rates (source, day, currency, value, observed_at, sources) "
                "VALUES ($1, $2, $3, $4, '2025-01-15T15:00:00+00:00', $5)",
                source, when, currency, value, json.loads(sources),
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO reference_ranges (source, currency, first_day, last_day) "
                "VALUES ($1, $2, $3, $3) ON CONFLICT DO NOTHING",
                source, currency, when,
            )  # fmt: skip
    finally:
        await conn.close()
    store = PostgresRateStore(pg_dsn)
    await store.open()
    try:
        await check(store)
    finally:
        await store.close()
