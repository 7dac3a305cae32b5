"""Embedded store: one SQLite file (WAL mode). The default for `make run`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Sequence

from kurs_common.sqlite_file import SqliteFile
from kurs_rates import model
from kurs_rates.sqlite_writes import write_batch

log = logging.getLogger(__name__)

# Each entry moves the schema from version i to i+1 (PRAGMA user_version), in one transaction.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE reference_rates (
        source      TEXT NOT NULL,
        day         TEXT NOT NULL,            -- YYYY-MM-DD business date
        currency    TEXT NOT NULL,
        value       TEXT NOT NULL,            -- exact decimal string per one pivot
        observed_at TEXT NOT NULL,            -- ISO 8601 UTC
        sources     TEXT NOT NULL,            -- JSON array of contributing source ids
        PRIMARY KEY (source, day, currency)
    ) WITHOUT ROWID;
    CREATE INDEX reference_rates_by_currency ON reference_rates (source, currency, day);
    CREATE TABLE live_rates (
        source      TEXT NOT NULL,
        currency    TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        day         TEXT NOT NULL,
        value       TEXT NOT NULL,
        sources     TEXT NOT NULL,
        replay      INTEGER NOT NULL,
        PRIMARY KEY (source, currency, observed_at)
    ) WITHOUT ROWID;
    CREATE INDEX live_rates_by_time ON live_rates (currency, observed_at);
    """,
    # 2: figures as published (a base per row) beside the blended series. The rows stored before
    # were each the consensus pick of their date, re-based per EUR: they become the blend (the
    # ECB's figure first where two sources had one), and the ECB's, already per EUR as it
    # publishes them, also stay the ECB's own. Other publishers' old rows were re-based, not as
    # published, so they live on in the blend only (a backfill restores them).
    """
    CREATE TABLE reference_rates_v2 (
        source      TEXT NOT NULL,
        day         TEXT NOT NULL,
        base        TEXT NOT NULL,            -- what `value` is quoted against, as published
        currency    TEXT NOT NULL,
        value       TEXT NOT NULL,            -- exact decimal string per one base
        observed_at TEXT NOT NULL,
        sources     TEXT NOT NULL,
        flag        TEXT NOT NULL DEFAULT '', -- why the validator kept it out of the blend
        PRIMARY KEY (source, day, base, currency)
    ) WITHOUT ROWID;
    INSERT INTO reference_rates_v2 (source, day, base, currency, value, observed_at, sources)
        SELECT source, day, 'EUR', currency, value, observed_at, sources FROM reference_rates
        WHERE source = 'ecb';
    INSERT OR IGNORE INTO reference_rates_v2 (source, day, base, currency, value, observed_at, sources)
        SELECT 'blend', day, 'EUR', currency, value, observed_at, sources FROM reference_rates
        ORDER BY source <> 'ecb';
    DROP TABLE reference_rates;
    ALTER TABLE reference_rates_v2 RENAME TO reference_rates;
    CREATE INDEX reference_rates_by_currency ON reference_rates (source, currency, day);
    """,
    # 3: first and last day per (source, base, currency), kept in the write transaction, so
    # /currencies and /sources never aggregate the whole history (as in PostgreSQL).
    """
    CREATE TABLE reference_ranges (
        source    TEXT NOT NULL,
        base      TEXT NOT NULL,
        currency  TEXT NOT NULL,
        first_day TEXT NOT NULL,
        last_day  TEXT NOT NULL,
        PRIMARY KEY (source, base, currency)
    ) WITHOUT ROWID;
    INSERT INTO reference_ranges (source, base, currency, first_day, last_day)
        SELECT source, base, currency, min(day), max(day) FROM reference_rates
        GROUP BY source, base, currency;
    """,
    # 4: no secondary index on reference_rates. No reference query needs (source, currency,
    # day), yet the planner chose it for as_of's join, scanning the whole series (1 s per
    # latest/historical answer on the full history, 0.6 ms by the primary key), and every
    # insert paid for a second B-tree.
    """
    DROP INDEX IF EXISTS reference_rates_by_currency;
    """,
)


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _live_row(
    source: str, currency: str, observed_at: str, day: str, value: str, sources: str, replay: int
) -> model.Rate:
    return model.Rate(
        source=source,
        kind=model.RateKind.LIVE,
        currency=currency,
        value=value,
        day=dt.date.fromisoformat(day),
        observed_at=dt.datetime.fromisoformat(observed_at),
        sources=tuple(json.loads(sources)),
        replay=bool(replay),
    )


class SqliteRateStore(SqliteFile):
    """RateStore on one SQLite file (WAL, autocommit: kurs_common.sqlite_file), migrated at open."""

    PRAGMAS = ("PRAGMA synchronous=NORMAL",)

    def not_open(self) -> Exception:
        return model.StoreUnavailable("store is not open")

    async def reachable(self) -> None:
        """An embedded file is always there; a failed write is what marks it unhealthy."""
        return None

    async def open(self) -> None:
        await self.connect()
        await self._migrate()

    async def _migrate(self) -> None:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript would COMMIT on its own; run statement by statement inside one
            # transaction so a failing migration leaves the schema as it was.
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, script.split(";")):
                    await self.db.execute(statement)
                await self.db.execute(f"PRAGMA user_version = {target}")
                await self.db.execute("COMMIT")
            except Exception:
                await self.db.execute("ROLLBACK")
                raise
            log.info("sqlite migration applied", extra={"version": target, "path": str(self.path)})

    async def write(self, rates: Sequence[model.Rate]) -> model.WriteResult:
        """One transaction per batch, classified and written by kurs_rates.sqlite_writes."""
        if not rates:
            return model.WriteResult()
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                result = await write_batch(self.db, rates)
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise model.StoreUnavailable(str(exc)) from exc
        return result

    async def day_on_or_before(self, source: str, day: dt.date) -> dt.date | None:
        async with self.db.execute(
            "SELECT max(day) FROM reference_rates WHERE source = ? AND day <= ?", (source, day.isoformat())
        ) as cur:
            row = await cur.fetchone()
        return dt.date.fromisoformat(row[0]) if row and row[0] else None

    async def first_day(self, source: str) -> dt.date | None:
        async with self.db.execute(
            "SELECT min(first_day) FROM reference_ranges WHERE source = ?", (source,)
        ) as cur:
            row = await cur.fetchone()
        return dt.date.fromisoformat(row[0]) if row and row[0] else None

    async def rates_on(self, source: str, day: dt.date) -> dict[str, str]:
        async with self.db.execute(
            "SELECT currency, value FROM reference_rates WHERE source = ? AND day = ? AND base = 'EUR' "
            "ORDER BY currency",
            (source, day.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return {str(currency): str(value) for currency, value in rows}

    async def series(self, source: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
        # One row per day (not per rate) crosses from the SQLite thread: a year is 255 rows, not 10,000.
        async with self.db.execute(
            "SELECT day, group_concat(currency || ':' || value, ',') FROM reference_rates "
            "WHERE source = ? AND day BETWEEN ? AND ? AND base = 'EUR' GROUP BY day ORDER BY day",
            (source, start.isoformat(), end.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return {
            dt.date.fromisoformat(day): dict(sorted(pair.split(":", 1) for pair in packed.split(",")))
            for day, packed in rows
        }

    async def series_days(
        self, source: str, start: dt.date, end: dt.date
    ) -> list[tuple[dt.date, dict[str, str] | None, frozenset[str]]]:
        # `series` and `contributors` in one read, one row per day: (day, its figures per one
        # pivot, or None when it has none, and every source named by any of its rows).
        async with self.db.execute(
            "SELECT day, group_concat(CASE WHEN base = 'EUR' THEN currency || ':' || value END, ','), "
            "group_concat(DISTINCT sources) FROM reference_rates "
            "WHERE source = ? AND day BETWEEN ? AND ? GROUP BY day ORDER BY day",
            (source, start.isoformat(), end.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        names: dict[str, frozenset[str]] = {}  # the few distinct contributor lists, parsed once
        out: list[tuple[dt.date, dict[str, str] | None, frozenset[str]]] = []
        for day, packed, lists in rows:
            found = names.get(lists)
            if found is None:
                found = names[lists] = frozenset(s for group in json.loads(f"[{lists}]") for s in group)
            per_pivot = dict(pair.split(":", 1) for pair in packed.split(",")) if packed else None
            out.append((dt.date.fromisoformat(day), per_pivot, found))
        return out

    async def latest_reference(self, source: str) -> list[model.Rate]:
        async with self.db.execute(
            "SELECT max(last_day) FROM reference_ranges WHERE source = ?", (source,)
        ) as cur:
            row = await cur.fetchone()
        if not row or not row[0]:
            return []
        return await self.as_of(source, dt.date.fromisoformat(row[0]))

    async def as_of(self, source: str, day: dt.date) -> list[model.Rate]:
        first = (day - dt.timedelta(days=model.CARRY_DAYS)).isoformat()
        async with self.db.execute(
            "SELECT r.day, r.base, r.currency, r.value, r.observed_at, r.sources, r.flag "
            "FROM reference_rates r JOIN (SELECT base, currency, max(day) AS day FROM reference_rates "
            "WHERE source = ? AND day BETWEEN ? AND ? GROUP BY base, currency) m "
            "ON r.source = ? AND r.day = m.day AND r.base = m.base AND r.currency = m.currency "
            "ORDER BY r.currency",
            (source, first, day.isoformat(), source),
        ) as cur:
            rows = await cur.fetchall()
        return [
            model.Rate(
                source=source,
                kind=model.RateKind.REFERENCE,
                currency=currency,
                value=value,
                day=dt.date.fromisoformat(row_day),
                observed_at=dt.datetime.fromisoformat(observed_at),
                sources=tuple(json.loads(sources)),
                base=base,
                flag=flag,
            )
            for row_day, base, currency, value, observed_at, sources, flag in rows
        ]

    async def figures_on(self, source: str, day: dt.date) -> list[model.Figure]:
        async with self.db.execute(
            "SELECT base, currency, value, flag FROM reference_rates WHERE source = ? AND day = ? "
            "ORDER BY base, currency",
            (source, day.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return [model.Figure(base, quote, value, flag) for base, quote, value, flag in rows]

    async def figure_series(
        self, source: str, start: dt.date, end: dt.date
    ) -> dict[dt.date, list[model.Figure]]:
        async with self.db.execute(
            "SELECT day, group_concat(base || ':' || currency || ':' || value, ',') FROM reference_rates "
            "WHERE source = ? AND day BETWEEN ? AND ? GROUP BY day ORDER BY day",
            (source, start.isoformat(), end.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return {
            dt.date.fromisoformat(day): [model.Figure(*item.split(":", 2)) for item in packed.split(",")]
            for day, packed in rows
        }

    async def contributors(self, source: str, start: dt.date, end: dt.date) -> tuple[str, ...]:
        async with self.db.execute(
            "SELECT DISTINCT sources FROM reference_rates WHERE source = ? AND day BETWEEN ? AND ?",
            (source, start.isoformat(), end.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return tuple(sorted({s for (packed,) in rows for s in json.loads(packed)}))

    async def publishers(self) -> list[model.PublisherRange]:
        async with self.db.execute(
            "SELECT source, base, currency, first_day, last_day FROM reference_ranges ORDER BY source"
        ) as cur:
            rows = await cur.fetchall()
        return model.publisher_ranges((str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows)

    async def latest_live(self) -> list[model.Rate]:
        async with self.db.execute(
            "SELECT l.source, l.currency, l.observed_at, l.day, l.value, l.sources, l.replay "
            "FROM live_rates l JOIN "
            "(SELECT currency, max(observed_at) AS ts FROM live_rates GROUP BY currency) m "
            "ON l.currency = m.currency AND l.observed_at = m.ts ORDER BY l.currency, l.source"
        ) as cur:
            rows = await cur.fetchall()
        latest: dict[str, model.Rate] = {}
        for row in rows:
            latest.setdefault(row[1], _live_row(*row))
        return list(latest.values())

    async def live_ticks(
        self, span: model.TickSpan, after: model.TickKey | None, limit: int
    ) -> list[model.Rate]:
        """RateStore.live_ticks: the source and keyset conditions added only when they apply."""
        marks = ", ".join("?" for _ in span.currencies)
        sql = (
            "SELECT source, currency, observed_at, day, value, sources, replay FROM live_rates "  # noqa: S608 (placeholders only)
            f"WHERE currency IN ({marks}) AND observed_at >= ? AND observed_at < ?"
        )
        args: list[object] = [*span.currencies, _ts(span.start), _ts(span.end)]
        if span.source:
            sql += " AND source = ?"
            args.append(span.source)
        if after is not None:
            sql += " AND (observed_at, source, currency) > (?, ?, ?)"
            args.extend((_ts(after[0]), after[1], after[2]))
        sql += " ORDER BY observed_at, source, currency LIMIT ?"
        args.append(limit)
        async with self.db.execute(sql, args) as cur:
            return [_live_row(*row) for row in await cur.fetchall()]

    async def live_before(self, currency: str, at: dt.datetime, source: str) -> model.Rate | None:
        """The newest live tick of `currency` observed before `at` (of `source` only when given)."""
        async with self.db.execute(
            "SELECT source, currency, observed_at, day, value, sources, replay FROM live_rates "
            "WHERE currency = ? AND observed_at < ? AND (? = '' OR source = ?) "
            "ORDER BY observed_at DESC, source DESC LIMIT 1",
            (currency, _ts(at), source, source),
        ) as cur:
            row = await cur.fetchone()
        return _live_row(*row) if row else None

    async def prune_live(self, before: dt.datetime) -> int:
        """Delete live ticks observed before `before`, except each (source, currency)'s newest.

        One statement (its own transaction, or part of a write's when one is open on the shared
        connection), so it needs no lock against the ingest path."""
        cur = await self.db.execute(
            "DELETE FROM live_rates WHERE observed_at < ? AND observed_at < (SELECT max(n.observed_at) "
            "FROM live_rates n WHERE n.source = live_rates.source AND n.currency = live_rates.currency)",
            (_ts(before),),
        )
        return cur.rowcount

    async def currency_ranges(self, source: str) -> list[model.CurrencyRange]:
        async with self.db.execute(
            "SELECT currency, first_day, last_day FROM reference_ranges WHERE source = ? AND base = 'EUR' "
            "ORDER BY currency",
            (source,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            model.CurrencyRange(code, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
            for code, first, last in rows
        ]
