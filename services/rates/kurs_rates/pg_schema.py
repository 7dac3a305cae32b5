"""PostgreSQL schema migrations: versioned SQL files applied once, atomically, by one replica.

The migrations are kurs_rates/pg_migrations/NNNN_name.sql, versions 1..n without gaps. They are
applied in ONE transaction under a transaction-scoped advisory lock, so replicas starting
together apply them once and a failing migration leaves the schema as it was (PostgreSQL DDL is
transactional). `python -m kurs_rates migrate` runs `migrate_url`.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from kurs_rates.pg_writes import Conn

log = logging.getLogger(__name__)

# Advisory lock key (64-bit): "kurs" in ASCII, then a purpose number.
MIGRATION_LOCK = 0x6B757273_00000001
MIGRATION_SECONDS = 60.0
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in kurs_rates.pg_migrations, in version order."""
    out = []
    for entry in importlib.resources.files("kurs_rates.pg_migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            out.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if versions != list(range(1, len(out) + 1)):
        raise RuntimeError(f"migration versions must be 1..n without gaps, found {versions}")
    return out


async def migrate(conn: Conn, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Apply every pending migration in one transaction; return the versions applied.

    pg_advisory_xact_lock makes a second replica wait until the first has committed; it then
    sees the versions as applied and does nothing.
    """
    pending_all = list(migrations) if migrations is not None else bundled_migrations()
    async with conn.transaction():
        await conn.execute(f"SET LOCAL statement_timeout = '{int(MIGRATION_SECONDS)}s'")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK, timeout=MIGRATION_SECONDS)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        done = []
        for migration in pending_all:
            if migration.version in applied:
                continue
            await conn.execute(migration.sql, timeout=MIGRATION_SECONDS)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            done.append(migration.version)
    for version in done:
        log.info("postgresql migration applied", extra={"version": version})
    return done


async def migrate_url(url: str, connect_seconds: float = 10.0) -> list[int]:
    """Connect to `url`, apply the pending migrations and disconnect (the `migrate` command)."""
    conn = await asyncpg.connect(url, timeout=connect_seconds)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
