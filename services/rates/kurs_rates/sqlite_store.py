"""Embedded store: one SQLite file (WAL mode). The default for `make run`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import aiosqlite

from kurs_rates.model import CurrencyRange, RateKind, StoredRate, StoreUnavailable, WriteResult

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
)


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


class SqliteRateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
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

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def write(self, rates: Sequence[StoredRate]) -> WriteResult:
        if not rates:
            return WriteResult()
        reference = [r for r in rates if r.kind is RateKind.REFERENCE]
        live = [r for r in rates if r.kind is RateKind.LIVE]
        inserted = updated = unchanged = 0
        changed: list[StoredRate] = []
        try:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                existing = await self._existing_reference(reference)
                new_rows, upd_rows = [], []
                for rate in reference:
                    key = (rate.source, rate.day.isoformat(), rate.currency)
                    row = (*key, rate.value, _ts(rate.observed_at), json.dumps(list(rate.sources)))
                    old = existing.get(key)
                    if old is None:
                        new_rows.append(row)
                        existing[key] = rate.value
                        inserted += 1
                        changed.append(rate)
                    elif Decimal(old) != Decimal(rate.value):
                        upd_rows.append(row)
                        existing[key] = rate.value
                        updated += 1
                        changed.append(rate)
                    else:
                        unchanged += 1
                await self.db.executemany(
                    "INSERT INTO reference_rates (source, day, currency, value, observed_at, sources) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    new_rows,
                )
                await self.db.executemany(
                    "UPDATE reference_rates SET value = ?, observed_at = ?, sources = ? "
                    "WHERE source = ? AND day = ? AND currency = ?",
                    [(r[3], r[4], r[5], r[0], r[1], r[2]) for r in upd_rows],
                )
                for rate in live:
                    cur = await self.db.execute(
                        "INSERT INTO live_rates (source, currency, observed_at, day, value, sources, replay) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (
                            rate.source,
                            rate.currency,
                            _ts(rate.observed_at),
                            rate.day.isoformat(),
                            rate.value,
                            json.dumps(list(rate.sources)),
                            int(rate.replay),
                        ),
                    )
                    if cur.rowcount:
                        inserted += 1
                        changed.append(rate)
                    else:
                        unchanged += 1
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return WriteResult(inserted, updated, unchanged, tuple(changed))

    async def _existing_reference(self, rates: Iterable[StoredRate]) -> dict[tuple[str, str, str], str]:
        spans: dict[str, list[dt.date]] = defaultdict(list)
        for rate in rates:
            spans[rate.source].append(rate.day)
        found: dict[tuple[str, str, str], str] = {}
        for source, days in spans.items():
            async with self.db.execute(
                "SELECT day, currency, value FROM reference_rates WHERE source = ? AND day BETWEEN ? AND ?",
                (source, min(days).isoformat(), max(days).isoformat()),
            ) as cur:
                rows = await cur.fetchall()
            for day, currency, value in rows:
                found[(source, day, currency)] = value
        return found

    async def day_on_or_before(self, source: str, day: dt.date) -> dt.date | None:
        async with self.db.execute(
            "SELECT max(day) FROM reference_rates WHERE source = ? AND day <= ?", (source, day.isoformat())
        ) as cur:
            row = await cur.fetchone()
        return dt.date.fromisoformat(row[0]) if row and row[0] else None

    async def first_day(self, source: str) -> dt.date | None:
        async with self.db.execute("SELECT min(day) FROM reference_rates WHERE source = ?", (source,)) as cur:
            row = await cur.fetchone()
        return dt.date.fromisoformat(row[0]) if row and row[0] else None

    async def rates_on(self, source: str, day: dt.date) -> dict[str, str]:
        async with self.db.execute(
            "SELECT currency, value FROM reference_rates WHERE source = ? AND day = ? ORDER BY currency",
            (source, day.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return {str(currency): str(value) for currency, value in rows}

    async def series(self, source: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
        # One row per day (not per rate) crosses from the SQLite thread: a year is 255 rows, not 10,000.
        async with self.db.execute(
            "SELECT day, group_concat(currency || ':' || value, ',') FROM reference_rates "
            "WHERE source = ? AND day BETWEEN ? AND ? GROUP BY day ORDER BY day",
            (source, start.isoformat(), end.isoformat()),
        ) as cur:
            rows = await cur.fetchall()
        return {
            dt.date.fromisoformat(day): dict(sorted(pair.split(":", 1) for pair in packed.split(",")))
            for day, packed in rows
        }

    async def latest_reference(self, source: str) -> list[StoredRate]:
        async with self.db.execute(
            "SELECT day, currency, value, observed_at, sources FROM reference_rates "
            "WHERE source = ? AND day = (SELECT max(day) FROM reference_rates WHERE source = ?) "
            "ORDER BY currency",
            (source, source),
        ) as cur:
            rows = await cur.fetchall()
        return [
            StoredRate(
                source=source,
                kind=RateKind.REFERENCE,
                currency=currency,
                value=value,
                day=dt.date.fromisoformat(day),
                observed_at=dt.datetime.fromisoformat(observed_at),
                sources=tuple(json.loads(sources)),
            )
            for day, currency, value, observed_at, sources in rows
        ]

    async def latest_live(self) -> list[StoredRate]:
        async with self.db.execute(
            "SELECT l.source, l.currency, l.observed_at, l.day, l.value, l.sources, l.replay "
            "FROM live_rates l JOIN "
            "(SELECT currency, max(observed_at) AS ts FROM live_rates GROUP BY currency) m "
            "ON l.currency = m.currency AND l.observed_at = m.ts ORDER BY l.currency, l.source"
        ) as cur:
            rows = await cur.fetchall()
        latest: dict[str, StoredRate] = {}
        for source, currency, observed_at, day, value, sources, replay in rows:
            latest.setdefault(
                currency,
                StoredRate(
                    source=source,
                    kind=RateKind.LIVE,
                    currency=currency,
                    value=value,
                    day=dt.date.fromisoformat(day),
                    observed_at=dt.datetime.fromisoformat(observed_at),
                    sources=tuple(json.loads(sources)),
                    replay=bool(replay),
                ),
            )
        return list(latest.values())

    async def currency_ranges(self, source: str) -> list[CurrencyRange]:
        async with self.db.execute(
            "SELECT currency, min(day), max(day) FROM reference_rates WHERE source = ? "
            "GROUP BY currency ORDER BY currency",
            (source,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            CurrencyRange(code, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
            for code, first, last in rows
        ]
