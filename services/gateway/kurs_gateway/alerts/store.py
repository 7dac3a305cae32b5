"""Durable alert state: rules, and the delivery outbox with its dead letters.

`AlertStore` is the contract; `SqliteAlertStore` (aiosqlite, one gateway) is here and
`alerts.pg_store.PgAlertStore` (several gateways sharing one PostgreSQL database) beside it;
`open_alert_store(url)` picks one by the URL's scheme.

An event is written to the deliveries table (keyed on its id, `<rule>:<sequence>`, insert or
ignore) before any attempt to deliver it, so an event is never lost to a crash and never queued
twice. Rows move pending -> delivered, or pending -> dead after the last attempt (the dead-letter
list); a dead letter can be put back to pending.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import orjson

from kurs_gateway.alerts.rules import Rule

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_rules (
    id TEXT PRIMARY KEY,
    api_key TEXT NOT NULL,
    body TEXT NOT NULL,
    secret TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_rules_key ON alert_rules (api_key);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    event_id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    api_key TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS alert_deliveries_key ON alert_deliveries (api_key, state);
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: str
    rule_id: str
    url: str
    secret: str
    payload: bytes
    attempts: int


class AlertStore(Protocol):
    # True when several gateways share the store (each re-reads the rules others changed).
    shared: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def add_rule(self, rule: Rule, secret: str) -> None: ...
    async def rules(self, api_key: str | None = None) -> list[tuple[Rule, str]]:
        """Every rule (or `api_key`'s) with its webhook secret, oldest first."""

    async def rules_version(self) -> int:
        """Moves (never back) whenever a rule is added or deleted."""

    async def count_rules(self, api_key: str) -> int: ...
    async def delete_rule(self, rule_id: str, api_key: str) -> bool: ...
    async def enqueue(self, rows: list[tuple[Rule, str, dict[str, Any]]]) -> int:
        """Write the events of webhook rules as pending; returns how many were new."""

    async def due(self, now: float, limit: int) -> list[Delivery]:
        """Pending deliveries due at `now`, each handed to one caller only (a shared store leases
        it: due again after the lease if its attempt never reports back)."""

    async def next_due(self) -> float | None: ...
    async def delivered(self, event_id: str, attempts: int) -> None: ...
    async def failed(self, event_id: str, attempts: int, error: str, retry_at: float | None) -> None: ...
    async def deliveries(self, api_key: str, state: str, limit: int) -> list[dict[str, Any]]: ...
    async def requeue(self, event_id: str, api_key: str) -> bool: ...


def open_alert_store(url: str, lease_seconds: float = 60.0) -> AlertStore:
    """The store a KURS_GATEWAY_ALERTS_DATABASE_URL names: sqlite:///path or postgresql://..."""
    if url.startswith("sqlite:///"):
        return SqliteAlertStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from kurs_gateway.alerts.pg_store import PgAlertStore

        return PgAlertStore(url, lease_seconds=lease_seconds)
    raise ValueError(f"alerts_database_url: unsupported scheme in {url.split(':', 1)[0]!r}")


def sqlite_path(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"alerts database: not a sqlite:/// URL: {url!r}")
    return Path(url[len(prefix) :])


def delivery_row(row: Any) -> dict[str, Any]:
    """A deliveries row (event_id, rule_id, url, payload, state, attempts, last_error, created_at,
    done_at) as /alerts/deliveries shows it."""
    return {
        "event_id": row[0],
        "rule_id": row[1],
        "url": row[2],
        "event": orjson.loads(row[3]),
        "state": row[4],
        "attempts": row[5],
        "last_error": row[6],
        "created_at": row[7],
        "done_at": row[8],
    }


class SqliteAlertStore:
    """One gateway's alert store (a single SQLite file)."""

    shared = False

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("alert store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")  # durable before acknowledged
        await self._db.executescript(SCHEMA)
        await self._db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    # rules

    async def add_rule(self, rule: Rule, secret: str) -> None:
        body = orjson.dumps(asdict(rule)).decode()
        await self.db.execute(
            "INSERT INTO alert_rules (id, api_key, body, secret) VALUES (?, ?, ?, ?)",
            (rule.id, rule.api_key, body, secret),
        )
        await self.db.commit()

    async def rules(self, api_key: str | None = None) -> list[tuple[Rule, str]]:
        sql = "SELECT body, secret FROM alert_rules"
        args: tuple[Any, ...] = ()
        if api_key is not None:
            sql, args = sql + " WHERE api_key = ? ORDER BY rowid", (api_key,)
        async with self.db.execute(sql, args) as cursor:
            return [(Rule(**orjson.loads(body)), secret) async for body, secret in cursor]

    async def rules_version(self) -> int:
        # this gateway is the only writer: its connection's change count moves with every write
        return self.db.total_changes

    async def count_rules(self, api_key: str) -> int:
        async with self.db.execute("SELECT count(*) FROM alert_rules WHERE api_key = ?", (api_key,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def delete_rule(self, rule_id: str, api_key: str) -> bool:
        cursor = await self.db.execute(
            "DELETE FROM alert_rules WHERE id = ? AND api_key = ?", (rule_id, api_key)
        )
        await self.db.commit()
        return cursor.rowcount > 0

    # deliveries

    async def enqueue(self, rows: list[tuple[Rule, str, dict[str, Any]]]) -> int:
        """Write the events of webhook rules (rule, secret, event) as pending; returns how many
        were new (an event already stored, e.g. a change evaluated twice, is not added again)."""
        now = time.time()
        before = self.db.total_changes
        await self.db.executemany(
            "INSERT OR IGNORE INTO alert_deliveries (event_id, rule_id, api_key, url, secret, payload,"
            " state, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            [
                (e["id"], r.id, r.api_key, r.webhook_url, secret, orjson.dumps(e), now, now)
                for r, secret, e in rows
                if r.webhook_url
            ],
        )
        await self.db.commit()
        return self.db.total_changes - before

    async def due(self, now: float, limit: int) -> list[Delivery]:
        async with self.db.execute(
            "SELECT event_id, rule_id, url, secret, payload, attempts FROM alert_deliveries"
            " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
            (now, limit),
        ) as cursor:
            return [Delivery(*row) async for row in cursor]

    async def next_due(self) -> float | None:
        async with self.db.execute(
            "SELECT min(next_at) FROM alert_deliveries WHERE state = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def delivered(self, event_id: str, attempts: int) -> None:
        await self.db.execute(
            "UPDATE alert_deliveries SET state = 'delivered', attempts = ?, done_at = ?, last_error = ''"
            " WHERE event_id = ?",
            (attempts, time.time(), event_id),
        )
        await self.db.commit()

    async def failed(self, event_id: str, attempts: int, error: str, retry_at: float | None) -> None:
        """One more failed attempt; dead (the dead-letter list) when retry_at is None."""
        if retry_at is None:
            sql = "UPDATE alert_deliveries SET state = 'dead', attempts = ?, last_error = ?, done_at = ?"
            args: tuple[Any, ...] = (attempts, error[:500], time.time(), event_id)
        else:
            sql = "UPDATE alert_deliveries SET attempts = ?, last_error = ?, next_at = ?"
            args = (attempts, error[:500], retry_at, event_id)
        await self.db.execute(sql + " WHERE event_id = ?", args)
        await self.db.commit()

    async def deliveries(self, api_key: str, state: str, limit: int) -> list[dict[str, Any]]:
        async with self.db.execute(
            "SELECT event_id, rule_id, url, payload, state, attempts, last_error, created_at, done_at"
            " FROM alert_deliveries WHERE api_key = ? AND state = ? ORDER BY created_at DESC LIMIT ?",
            (api_key, state, limit),
        ) as cursor:
            rows = [row async for row in cursor]
        return [delivery_row(r) for r in rows]

    async def requeue(self, event_id: str, api_key: str) -> bool:
        cursor = await self.db.execute(
            "UPDATE alert_deliveries SET state = 'pending', attempts = 0, next_at = ?, done_at = NULL"
            " WHERE event_id = ? AND api_key = ? AND state = 'dead'",
            (time.time(), event_id, api_key),
        )
        await self.db.commit()
        return cursor.rowcount > 0
