"""Embedded SQLite storage of anomalies and quality records, with bounded retention.

One connection, used from worker threads one call at a time (a lock serialises them), in WAL mode.
Anomalies are idempotent: the same observation rejected for the same reason is stored once (a re-run
of the history adds nothing). Quality records are keyed on (kind, currency, slot) — the slot is the
fixing date of a reference rate, the instant of a live tick — and replaced when recomputed.
Held figures (table `held`) are replaced as a whole after every batch that changed them and
restored at start (see kurs_validator.engine.history).

Retention (see docs/validation.md): anomalies older than `anomaly_retention` (by detection time)
and beyond `anomaly_max_rows` (oldest first) are deleted; live quality records older than
`live_quality_retention` (by observation time); reference quality records older than
`reference_quality_retention` (by fixing date).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from kurs_validator.model import Anomaly, QualityRecord
from kurs_validator.store_rows import (
    ANOMALY_COLUMNS,
    QUALITY_COLUMNS,
    anomaly_from_row,
    anomaly_row,
    quality_from_row,
    quality_row,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS anomalies (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  source TEXT NOT NULL,
  feed TEXT NOT NULL,
  kind TEXT NOT NULL,
  base TEXT NOT NULL,
  quote TEXT NOT NULL,
  value TEXT NOT NULL,
  currency TEXT NOT NULL,
  day TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  expected TEXT NOT NULL,
  detected_at TEXT NOT NULL,
  UNIQUE (source, kind, base, quote, observed_at, value, reason)
);
CREATE INDEX IF NOT EXISTS anomalies_currency ON anomalies (currency, id);
CREATE INDEX IF NOT EXISTS anomalies_source ON anomalies (source, id);
CREATE INDEX IF NOT EXISTS anomalies_reason ON anomalies (reason, id);
CREATE INDEX IF NOT EXISTS anomalies_detected ON anomalies (detected_at);
CREATE TABLE IF NOT EXISTS quality (
  kind TEXT NOT NULL,
  currency TEXT NOT NULL,
  slot TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  value TEXT NOT NULL,
  source TEXT NOT NULL,
  confidence TEXT NOT NULL,
  spread TEXT NOT NULL,
  consensus TEXT NOT NULL,
  newest_observed_at TEXT NOT NULL,
  newest_age REAL NOT NULL,
  published_at TEXT NOT NULL,
  -- The published source's weight when it was the only contributor and nothing was excluded;
  -- otherwise NULL and `detail` holds both lists (JSON).
  weight REAL,
  detail BLOB,
  PRIMARY KEY (kind, currency, slot)
) WITHOUT ROWID;
-- Figures held by the engine (a jump waiting for the source's next figure), one per series.
CREATE TABLE IF NOT EXISTS held (
  series TEXT PRIMARY KEY,
  record BLOB NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class AnomalyFilter:
    currency: str = ""
    source: str = ""
    reason: str = ""
    kind: str = ""
    start_day: str = ""
    end_day: str = ""

    def matches(self, a: Anomaly) -> bool:
        obs = a.observation
        return (
            (not self.currency or a.currency == self.currency)
            and (not self.source or obs.source == self.source)
            and (not self.reason or a.reason == self.reason)
            and (not self.kind or obs.kind == self.kind)
            and (not self.start_day or obs.day >= self.start_day)
            and (not self.end_day or obs.day <= self.end_day)
        )

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("currency", self.currency),
            ("source", self.source),
            ("reason", self.reason),
            ("kind", self.kind),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.start_day:
            clauses.append("day >= ?")
            params.append(self.start_day)
        if self.end_day:
            clauses.append("day <= ?")
            params.append(self.end_day)
        return clauses, params


@dataclass(frozen=True, slots=True)
class Retention:
    anomalies: dt.timedelta = dt.timedelta(days=90)
    anomaly_max_rows: int = 1_000_000
    live_quality: dt.timedelta = dt.timedelta(hours=48)
    reference_quality: dt.timedelta = dt.timedelta(days=40 * 366)


def sqlite_path(url: str) -> str:
    """sqlite:///relative.db, sqlite:////absolute.db or sqlite:///:memory: -> a path for sqlite3."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"database_url must start with {prefix!r}, got {url!r}")
    return url[len(prefix) :] or ":memory:"


class ValidatorStore:
    def __init__(self, url: str, retention: Retention | None = None, *, busy_timeout: float = 30.0) -> None:
        self.path = sqlite_path(url)
        self.retention = retention or Retention()
        # How long a statement waits for another connection's lock (sqlite3's `timeout`).
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout, check_same_thread=False, isolation_level=None
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # -- writes ----------------------------------------------------------------------------
    def write(self, anomalies: Sequence[Anomaly], quality: Sequence[QualityRecord]) -> list[Anomaly]:
        """Store both in one transaction; returns the anomalies not stored before, with their ids."""
        new: list[Anomaly] = []
        if not anomalies and not quality:
            return new
        stamps: dict[dt.datetime, str] = {}  # many records of a batch share their timestamps
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                for a in anomalies:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO anomalies (reason, detail, source, feed, kind, base, quote, "
                        "value, currency, day, observed_at, expected, detected_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        anomaly_row(a),
                    )
                    if cur.rowcount == 1 and cur.lastrowid is not None:
                        new.append(dataclasses.replace(a, id=cur.lastrowid))
                db.executemany(
                    "INSERT OR REPLACE INTO quality (kind, currency, slot, observed_at, value, source, "
                    "confidence, spread, consensus, newest_observed_at, newest_age, published_at, weight, "
                    "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [quality_row(q, stamps) for q in quality],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return new

    def replace_held(self, records: Sequence[dict[str, Any]]) -> None:
        """Replace the persisted held figures with these (one transaction, committed on return)."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.execute("DELETE FROM held")
                db.executemany(
                    "INSERT INTO held (series, record) VALUES (?, ?)",
                    [("/".join(r["key"]), orjson.dumps(r)) for r in records],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def load_held(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn().execute("SELECT record FROM held ORDER BY series").fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def purge(self, now: dt.datetime) -> int:
        """Apply the retention rules; returns the number of rows deleted."""
        r = self.retention
        with self._lock:
            db = self._conn()
            deleted = db.execute(
                "DELETE FROM anomalies WHERE detected_at < ?", ((now - r.anomalies).isoformat(),)
            ).rowcount
            (count,) = db.execute("SELECT COUNT(*) FROM anomalies").fetchone()
            if count > r.anomaly_max_rows:
                deleted += db.execute(
                    "DELETE FROM anomalies WHERE id IN (SELECT id FROM anomalies ORDER BY id LIMIT ?)",
                    (count - r.anomaly_max_rows,),
                ).rowcount
            deleted += db.execute(
                "DELETE FROM quality WHERE kind = 'live' AND slot < ?", ((now - r.live_quality).isoformat(),)
            ).rowcount
            deleted += db.execute(
                "DELETE FROM quality WHERE kind = 'reference' AND slot < ?",
                ((now - r.reference_quality).date().isoformat(),),
            ).rowcount
            return deleted

    # -- reads -----------------------------------------------------------------------------
    def list_anomalies(self, where: AnomalyFilter, limit: int, before_id: int | None) -> list[Anomaly]:
        """Newest first, at most `limit`, with an id below `before_id` when given."""
        clauses, params = where.where()
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        sql = f"SELECT {ANOMALY_COLUMNS} FROM anomalies"  # noqa: S608 - fixed columns, bound values
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._conn().execute(sql, (*params, limit)).fetchall()
        return [anomaly_from_row(row) for row in rows]

    def anomalies_after(self, where: AnomalyFilter, after_id: int, limit: int) -> list[Anomaly]:
        """Oldest first, ids above `after_id`."""
        clauses, params = where.where()
        clauses.append("id > ?")
        params.append(after_id)
        sql = (
            f"SELECT {ANOMALY_COLUMNS} FROM anomalies WHERE "  # noqa: S608 - fixed columns, bound values
            + " AND ".join(clauses)
            + " ORDER BY id LIMIT ?"
        )
        with self._lock:
            rows = self._conn().execute(sql, (*params, limit)).fetchall()
        return [anomaly_from_row(row) for row in rows]

    def get_quality(self, kind: str, currency: str, day: str | None) -> QualityRecord | None:
        """The record of `currency` on `day` (or on the last date before it); the newest without a day."""
        sql = f"SELECT {QUALITY_COLUMNS} FROM quality WHERE kind = ? AND currency = ?"  # noqa: S608
        params: list[Any] = [kind, currency]
        if day:
            # Reference slots are dates; live slots are instants, all below the next day's date.
            sql += " AND slot < ?"
            params.append((dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat())
        sql += " ORDER BY slot DESC LIMIT 1"
        with self._lock:
            row = self._conn().execute(sql, params).fetchone()
        return quality_from_row(row) if row else None

    def count_quality(self) -> int:
        with self._lock:
            (count,) = self._conn().execute("SELECT COUNT(*) FROM quality").fetchone()
        return int(count)
