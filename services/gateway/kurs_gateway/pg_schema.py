"""A PostgreSQL pool whose tables are created at open, under an advisory lock.

The gateway's shared stores (keys, alerts) open the same way: a small asyncpg pool whose
statements share one timeout, then their schema, created if missing under a transaction-level
advisory lock so that replicas starting together do not race.
"""

from __future__ import annotations

from typing import Any

import asyncpg


class PgSchemaStore:
    """Base of a store on one asyncpg pool; a subclass names its schema, lock and pool size."""

    WHAT = "store"  # for the error when used before open()
    SCHEMA = ""
    SCHEMA_LOCK = 0
    MAX_POOL = 2

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._pool: asyncpg.Pool[Any] | None = None

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise RuntimeError(f"{self.WHAT} is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self.MAX_POOL, timeout=self.timeout, command_timeout=self.timeout
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self.SCHEMA_LOCK)
            await conn.execute(self.SCHEMA)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
