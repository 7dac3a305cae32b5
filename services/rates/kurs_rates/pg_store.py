"""Production store: PostgreSQL through an asyncpg pool.

* Versioned migrations (kurs_rates/pg_migrations/NNNN_*.sql) are applied at open by
  kurs_rates.pg_schema (one transaction under an advisory lock, once across replicas).
* Writes (kurs_rates.pg_writes): the batch is COPYed into a temporary table and merged with
  INSERT ... ON CONFLICT in one transaction (atomic per batch), classified by the same rules as
  the embedded store (kurs_rates.writes). Writers of a source are serialised across replicas by
  an advisory lock, so "inserted / updated / unchanged" is exact.
* Every statement has a server-side statement_timeout and a client-side timeout; transient
  errors (connection lost or refused, serialisation failures) are retried with backoff, then
  surface as StoreUnavailable; a timed-out statement surfaces as TimeoutError.

See docs/storage.md for the schema, the index choices and EXPLAIN output of the hot queries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from kurs_rates import model
from kurs_rates.pg_partitions import PARTITIONED, create_partitions, existing_partitions
from kurs_rates.pg_pool import TRANSIENT_ERRORS, call_with_retry
from kurs_rates.pg_schema import migrate
from kurs_rates.pg_writes import Conn, merge_batch, partition_years, result_of
from kurs_rates.writes import LiveKey, RefKey, plan_batch

log = logging.getLogger(__name__)
T = TypeVar("T")


def _live_record(row: asyncpg.Record) -> model.Rate:
    return model.Rate(
        source=row["source"],
        kind=model.RateKind.LIVE,
        currency=row["currency"],
        value=row["value"],
        day=row["day"],
        observed_at=row["observed_at"],
        sources=tuple(row["sources"]),
        replay=row["replay"],
    )


class PostgresRateStore:
    """RateStore on PostgreSQL. `url` is a libpq-style postgresql:// DSN."""

    def __init__(
        self,
        url: str,
        *,
        min_pool: int = 1,
        max_pool: int = 10,
        statement_timeout: float = 5.0,
        write_timeout: float = 60.0,
        connect_timeout: float = 2.0,
        close_timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.05,
        apply_migrations: bool = True,
    ) -> None:
        self.url = url
        self.min_pool = min_pool
        self.max_pool = max_pool
        self.statement_timeout = statement_timeout
        self.write_timeout = write_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.attempts = attempts
        self.backoff = backoff
        self.apply_migrations = apply_migrations
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._partitions: dict[str, set[int]] = {name: set() for name in PARTITIONED}

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_pool,
                max_size=self.max_pool,
                timeout=self.connect_timeout,
                command_timeout=self.statement_timeout + 1.0,
                max_inactive_connection_lifetime=60.0,
                server_settings={
                    "application_name": "kurs-rates",
                    "statement_timeout": str(int(self.statement_timeout * 1000)),
                    "TimeZone": "UTC",
                },
            )
        except TRANSIENT_ERRORS as exc:
            raise model.StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        except TimeoutError as exc:
            raise model.StoreUnavailable("PostgreSQL did not answer the connection in time") from exc
        if self.apply_migrations:
            await self._call(migrate, attempts=1)
        await self._call(self._load_partitions)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=self.close_timeout)
            except TimeoutError:
                pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise model.StoreUnavailable("store is not open")
        return self._pool

    async def _call(
        self,
        op: Callable[[Conn], Awaitable[T]],
        *,
        attempts: int | None = None,
        tx_seconds: float | None = None,
    ) -> T:
        """Run `op` on a pooled connection; retry transient failures with exponential backoff."""
        return await call_with_retry(
            self.pool,
            op,
            attempts=attempts or self.attempts,
            backoff=self.backoff,
            acquire_timeout=self.connect_timeout + 1.0,
            tx_seconds=tx_seconds,
        )

    async def _load_partitions(self, conn: Conn) -> None:
        self._partitions = await existing_partitions(conn)

    async def _ensure_partitions(self, wanted: dict[str, set[int]]) -> None:
        missing = {table: years - self._partitions[table] for table, years in wanted.items()}
        missing = {table: years for table, years in missing.items() if years}
        if not missing:
            return

        async def create(conn: Conn) -> None:
            await create_partitions(conn, missing)

        await self._call(create, tx_seconds=self.write_timeout)
        for table, years in missing.items():
            self._partitions[table] |= years
            log.info("postgresql partitions created", extra={"table": table, "years": sorted(years)})

    # -- writes --------------------------------------------------------------------------
    async def write(self, rates: Sequence[model.Rate]) -> model.WriteResult:
        """Plan and classify by kurs_rates.writes, merge by kurs_rates.pg_writes, one transaction."""
        if not rates:
            return model.WriteResult()
        plan = plan_batch(rates)
        await self._ensure_partitions(partition_years(rates, plan))
        seconds = self.write_timeout + 1.0  # client-side bound; the server's statement_timeout fires first

        async def run(conn: Conn) -> tuple[dict[RefKey, str], set[LiveKey]]:
            return await merge_batch(conn, rates, plan, seconds)

        stored, inserted = await self._call(run, tx_seconds=self.write_timeout)
        return result_of(rates, plan, stored, inserted)

    # -- reads ---------------------------------------------------------------------------
    async def _fetchval(self, query: str, *args: object) -> Any:
        async def op(conn: Conn) -> Any:
            return await conn.fetchval(query, *args)

        return await self._call(op)

    async def _fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async def op(conn: Conn) -> list[asyncpg.Record]:
            return list(await conn.fetch(query, *args))

        return await self._call(op)

    async def day_on_or_before(self, source: str, day: dt.date) -> dt.date | None:
        value = await self._fetchval(
            "SELECT max(day) FROM reference_rates WHERE source = $1 AND day <= $2", source, day
        )
        return value if isinstance(value, dt.date) else None

    async def first_day(self, source: str) -> dt.date | None:
        value = await self._fetchval("SELECT min(first_day) FROM reference_ranges WHERE source = $1", source)
        return value if isinstance(value, dt.date) else None

    async def rates_on(self, source: str, day: dt.date) -> dict[str, str]:
        rows = await self._fetch(
            "SELECT currency, value FROM reference_rates WHERE source = $1 AND day = $2 AND base = 'EUR' "
            "ORDER BY currency",
            source,
            day,
        )
        return {row["currency"]: row["value"] for row in rows}

    async def series(self, source: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
        rows = await self._fetch(
            "SELECT day, currency, value FROM reference_rates "
            "WHERE source = $1 AND day BETWEEN $2 AND $3 AND base = 'EUR' ORDER BY day, currency",
            source,
            start,
            end,
        )
        out: dict[dt.date, dict[str, str]] = {}
        for row in rows:
            out.setdefault(row["day"], {})[row["currency"]] = row["value"]
        return out

    async def series_days(
        self, source: str, start: dt.date, end: dt.date
    ) -> list[tuple[dt.date, dict[str, str] | None, frozenset[str]]]:
        # `series` and `contributors` in one read, one row per day (see SqliteRateStore).
        rows = await self._fetch(
            "SELECT day, array_agg(currency ORDER BY currency) FILTER (WHERE base = 'EUR') AS codes, "
            "array_agg(value ORDER BY currency) FILTER (WHERE base = 'EUR') AS vals, "
            "array_agg(DISTINCT array_to_string(sources, ',')) AS lists FROM reference_rates "
            "WHERE source = $1 AND day BETWEEN $2 AND $3 GROUP BY day ORDER BY day",
            source,
            start,
            end,
        )
        names: dict[tuple[str, ...], frozenset[str]] = {}
        out: list[tuple[dt.date, dict[str, str] | None, frozenset[str]]] = []
        for row in rows:
            lists = tuple(row["lists"])
            found = names.get(lists)
            if found is None:
                found = names[lists] = frozenset(s for group in lists for s in group.split(",") if s)
            codes = row["codes"]
            per_pivot = dict(zip(codes, row["vals"], strict=True)) if codes else None
            out.append((row["day"], per_pivot, found))
        return out

    async def latest_reference(self, source: str) -> list[model.Rate]:
        newest = await self._fetchval("SELECT max(last_day) FROM reference_ranges WHERE source = $1", source)
        return await self.as_of(source, newest) if isinstance(newest, dt.date) else []

    async def as_of(self, source: str, day: dt.date) -> list[model.Rate]:
        rows = await self._fetch(
            "SELECT DISTINCT ON (base, currency) day, base, currency, value, observed_at, sources, flag "
            "FROM reference_rates WHERE source = $1 AND day BETWEEN $2 AND $3 "
            "ORDER BY base, currency, day DESC",
            source,
            day - dt.timedelta(days=model.CARRY_DAYS),
            day,
        )
        return [
            model.Rate(
                source=source,
                kind=model.RateKind.REFERENCE,
                currency=row["currency"],
                value=row["value"],
                day=row["day"],
                observed_at=row["observed_at"],
                sources=tuple(row["sources"]),
                base=row["base"],
                flag=row["flag"],
            )
            for row in sorted(rows, key=lambda r: (r["currency"], r["base"]))
        ]

    async def figures_on(self, source: str, day: dt.date) -> list[model.Figure]:
        rows = await self._fetch(
            "SELECT base, currency, value, flag FROM reference_rates WHERE source = $1 AND day = $2 "
            "ORDER BY base, currency",
            source,
            day,
        )
        return [model.Figure(row["base"], row["currency"], row["value"], row["flag"]) for row in rows]

    async def figure_series(
        self, source: str, start: dt.date, end: dt.date
    ) -> dict[dt.date, list[model.Figure]]:
        rows = await self._fetch(
            "SELECT day, base, currency, value FROM reference_rates "
            "WHERE source = $1 AND day BETWEEN $2 AND $3 ORDER BY day, base, currency",
            source,
            start,
            end,
        )
        out: dict[dt.date, list[model.Figure]] = {}
        for row in rows:
            out.setdefault(row["day"], []).append(model.Figure(row["base"], row["currency"], row["value"]))
        return out

    async def contributors(self, source: str, start: dt.date, end: dt.date) -> tuple[str, ...]:
        rows = await self._fetch(
            "SELECT DISTINCT unnest(sources) AS s FROM reference_rates "
            "WHERE source = $1 AND day BETWEEN $2 AND $3",
            source,
            start,
            end,
        )
        return tuple(sorted(row["s"] for row in rows))

    async def publishers(self) -> list[model.PublisherRange]:
        rows = await self._fetch(
            "SELECT source, base, currency, first_day, last_day FROM reference_ranges ORDER BY source"
        )
        return model.publisher_ranges(
            (r["source"], r["base"], r["currency"], r["first_day"].isoformat(), r["last_day"].isoformat())
            for r in rows
        )

    async def latest_live(self) -> list[model.Rate]:
        rows = await self._fetch(
            "SELECT currency, source, observed_at, day, value, sources, replay "
            "FROM live_latest ORDER BY currency"
        )
        return [_live_record(row) for row in rows]

    async def live_ticks(
        self, span: model.TickSpan, after: model.TickKey | None, limit: int
    ) -> list[model.Rate]:
        """RateStore.live_ticks: one keyset query on live_rates (time-partitioned)."""
        rows = await self._fetch(
            "SELECT source, currency, observed_at, day, value, sources, replay FROM live_rates "
            "WHERE currency = ANY($1::text[]) AND observed_at >= $2 AND observed_at < $3 "
            "AND ($4 = '' OR source = $4) "
            "AND ($5::timestamptz IS NULL OR (observed_at, source, currency) > ($5, $6, $7)) "
            "ORDER BY observed_at, source, currency LIMIT $8",
            list(span.currencies),
            span.start,
            span.end,
            span.source,
            after[0] if after else None,
            after[1] if after else "",
            after[2] if after else "",
            limit,
        )
        return [_live_record(row) for row in rows]

    async def live_before(self, currency: str, at: dt.datetime, source: str) -> model.Rate | None:
        """The newest live tick of `currency` observed before `at` (of `source` only when given)."""
        rows = await self._fetch(
            "SELECT source, currency, observed_at, day, value, sources, replay FROM live_rates "
            "WHERE currency = $1 AND observed_at < $2 AND ($3 = '' OR source = $3) "
            "ORDER BY observed_at DESC, source DESC LIMIT 1",
            currency,
            at,
            source,
        )
        return _live_record(rows[0]) if rows else None

    async def prune_live(self, before: dt.datetime) -> int:
        """Delete live ticks observed before `before`, except each (source, currency)'s newest."""
        status = await self._call(
            lambda conn: conn.execute(
                "DELETE FROM live_rates l WHERE observed_at < $1 AND EXISTS (SELECT 1 FROM live_rates n "
                "WHERE n.source = l.source AND n.currency = l.currency AND n.observed_at > l.observed_at)",
                before,
            ),
            tx_seconds=self.write_timeout,
        )
        return int(str(status).rsplit(" ", 1)[-1])

    async def currency_ranges(self, source: str) -> list[model.CurrencyRange]:
        rows = await self._fetch(
            "SELECT currency, first_day, last_day FROM reference_ranges WHERE source = $1 AND base = 'EUR' "
            "ORDER BY currency",
            source,
        )
        return [model.CurrencyRange(row["currency"], row["first_day"], row["last_day"]) for row in rows]

    async def reachable(self) -> bool:
        """Whether a trivial query answers now (the health loop's probe)."""
        try:
            await self._fetchval("SELECT 1")
        except Exception:  # any failure means "not reachable right now"
            return False
        return True
