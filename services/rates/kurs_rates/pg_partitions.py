"""Yearly partitions of the PostgreSQL store's two big tables (reference_rates by day, live_rates by
observed_at): which exist, and creating the missing ones, serialised across replicas."""

from __future__ import annotations

import re

from kurs_rates.pg_writes import Conn

# Advisory lock key (64-bit): "kurs" in ASCII, then a purpose number (1: pg_schema's migrations).
PARTITION_LOCK = 0x6B757273_00000002

PARTITIONED = ("reference_rates", "live_rates")


def _year_bounds(year: int, column_is_timestamp: bool) -> tuple[str, str]:
    if column_is_timestamp:
        return f"{year:04d}-01-01 00:00:00+00", f"{year + 1:04d}-01-01 00:00:00+00"
    return f"{year:04d}-01-01", f"{year + 1:04d}-01-01"


async def existing_partitions(conn: Conn) -> dict[str, set[int]]:
    """The years that have a partition, per partitioned table."""
    found: dict[str, set[int]] = {name: set() for name in PARTITIONED}
    rows = await conn.fetch(
        "SELECT p.relname AS parent, c.relname AS child FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = ANY($1::text[]) AND p.relnamespace = 'public'::regnamespace",
        list(PARTITIONED),
    )
    for row in rows:
        match = re.fullmatch(rf"{row['parent']}_y(\d{{4}})", row["child"])
        if match:
            found[row["parent"]].add(int(match[1]))
    return found


async def create_partitions(conn: Conn, missing: dict[str, set[int]]) -> None:
    """Create each table's partitions of `missing` years, in the caller's transaction, under the lock."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
    for table, years in missing.items():
        for year in sorted(years):
            if not 1 <= year <= 9998:
                raise ValueError(f"{table}: year {year} is out of range")
            low, high = _year_bounds(year, table == "live_rates")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table}_y{year:04d} PARTITION OF {table} "
                f"FOR VALUES FROM ('{low}') TO ('{high}')"
            )
