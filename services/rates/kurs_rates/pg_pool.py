"""Calls on the PostgreSQL store's asyncpg pool: transient failures retried with backoff (then
StoreUnavailable), a cancelled statement surfaced as TimeoutError, optionally in one transaction
with its own statement_timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from kurs_rates.model import StoreUnavailable
from kurs_rates.pg_writes import Conn

# Logged under the store's name, as before this module was split from it.
log = logging.getLogger("kurs_rates.pg_store")
T = TypeVar("T")

# Errors after which the same call may succeed: the connection broke or could not be made,
# the server is starting or shutting down, or a serialisation conflict/deadlock was detected.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.TransactionRollbackError,
    asyncpg.AdminShutdownError,
)


async def call_with_retry(
    pool: asyncpg.Pool[asyncpg.Record],
    op: Callable[[Conn], Awaitable[T]],
    *,
    attempts: int,
    backoff: float,
    acquire_timeout: float,
    tx_seconds: float | None = None,
) -> T:
    """Run `op` on a pooled connection; retry transient failures with exponential backoff."""
    tries = attempts
    delay = backoff
    for attempt in range(1, tries + 1):
        try:
            async with pool.acquire(timeout=acquire_timeout) as conn:
                if tx_seconds is None:
                    return await op(conn)
                async with conn.transaction():
                    ms = int(tx_seconds * 1000)
                    await conn.execute(f"SET LOCAL statement_timeout = {ms}")
                    return await asyncio.wait_for(op(conn), tx_seconds + 1.0)
        except asyncpg.QueryCanceledError as exc:
            raise TimeoutError(f"PostgreSQL statement timed out: {exc}") from exc
        except TRANSIENT_ERRORS as exc:
            if attempt == tries:
                raise StoreUnavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}") from exc
            log.warning(
                "postgresql call failed, retrying",
                extra={"attempt": attempt, "error": f"{type(exc).__name__}: {exc}"},
            )
            await asyncio.sleep(delay)
            delay *= 4
    raise AssertionError("unreachable")  # pragma: no cover
