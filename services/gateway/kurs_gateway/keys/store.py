"""Where key records live: a table in the gateway's database (SQLite file or PostgreSQL).

`open_store(url)` picks the backend: `sqlite:///relative/path`, `sqlite:////absolute/path` or
`postgresql://...` (pg_store.py). Only hashes are stored (model.py). Every change sets
`updated_at`, which is how other gateways notice it (registry.py polls `changed_since`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Protocol

from kurs_common.sqlite_file import SqliteFile
from kurs_gateway.keys.model import KeyRecord

COLUMNS = (
    "id, hash, name, owner, scopes, created_at, quota_per_day, quota_per_month, rate_per_second, "
    "burst, expires_at, revoked_at, updated_at"
)


class KeyStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def insert(self, record: KeyRecord) -> None: ...
    async def get(self, key_id: str) -> KeyRecord | None: ...
    async def all(self) -> list[KeyRecord]: ...
    async def changed_since(self, moment: dt.datetime) -> list[KeyRecord]: ...
    async def revoke(self, key_id: str, moment: dt.datetime) -> KeyRecord | None: ...


def open_store(url: str) -> KeyStore:
    if url.startswith("sqlite:///"):
        return SqliteKeyStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from kurs_gateway.keys.pg_store import PgKeyStore

        return PgKeyStore(url)
    raise ValueError(f"database_url: unsupported scheme in {url.split(':', 1)[0]!r}")


def _ts(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def _dt(text: Any) -> dt.datetime | None:
    if text is None:
        return None
    if isinstance(text, dt.datetime):
        return text.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(str(text)).astimezone(dt.UTC)


def row_to_record(row: Any) -> KeyRecord:
    created, updated = _dt(row[5]), _dt(row[12])
    if created is None or updated is None:
        raise ValueError(f"key {row[0]}: created_at and updated_at are required")
    return KeyRecord(
        id=row[0],
        hash=row[1],
        name=row[2],
        owner=row[3],
        scopes=frozenset(s for s in str(row[4]).split(",") if s),
        created_at=created,
        quota_per_day=row[6],
        quota_per_month=row[7],
        rate_per_second=row[8],
        burst=row[9],
        expires_at=_dt(row[10]),
        revoked_at=_dt(row[11]),
        updated_at=updated,
    )


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  name TEXT NOT NULL,
  owner TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at TEXT NOT NULL,
  quota_per_day INTEGER,
  quota_per_month INTEGER,
  rate_per_second REAL,
  burst INTEGER,
  expires_at TEXT,
  revoked_at TEXT,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_api_keys_updated ON gateway_api_keys (updated_at);
"""


class SqliteKeyStore(SqliteFile):
    """The embedded default: one table in a SQLite file (WAL, so readers never wait for a writer)."""

    def not_open(self) -> Exception:
        return RuntimeError("key store is not open")

    async def open(self) -> None:
        db = await self.connect()
        await db.executescript(SQLITE_SCHEMA)

    async def insert(self, record: KeyRecord) -> None:
        await self._write(
            f"INSERT INTO gateway_api_keys ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (
                record.id,
                record.hash,
                record.name,
                record.owner,
                ",".join(sorted(record.scopes)),
                _ts(record.created_at),
                record.quota_per_day,
                record.quota_per_month,
                record.rate_per_second,
                record.burst,
                _ts(record.expires_at),
                _ts(record.revoked_at),
                _ts(record.updated_at),
            ),
        )

    async def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        async with self.db.execute(sql, args):
            pass

    async def _select(self, where: str, args: tuple[Any, ...]) -> list[KeyRecord]:
        query = f"SELECT {COLUMNS} FROM gateway_api_keys {where} ORDER BY created_at, id"  # noqa: S608
        async with self.db.execute(query, args) as cursor:
            return [row_to_record(row) for row in await cursor.fetchall()]

    async def get(self, key_id: str) -> KeyRecord | None:
        rows = await self._select("WHERE id = ?", (key_id,))
        return rows[0] if rows else None

    async def all(self) -> list[KeyRecord]:
        return await self._select("", ())

    async def changed_since(self, moment: dt.datetime) -> list[KeyRecord]:
        return await self._select("WHERE updated_at >= ?", (_ts(moment),))

    async def revoke(self, key_id: str, moment: dt.datetime) -> KeyRecord | None:
        await self._write(
            "UPDATE gateway_api_keys SET revoked_at = COALESCE(revoked_at, ?), updated_at = ? WHERE id = ?",
            (_ts(moment), _ts(moment), key_id),
        )
        return await self.get(key_id)
