"""The key table in PostgreSQL (the production database, shared by every gateway replica).

The table is created at open if missing, under an advisory lock so replicas starting together
do not race. Timestamps are `timestamptz`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kurs_gateway.keys.model import KeyRecord
from kurs_gateway.keys.store import COLUMNS, row_to_record
from kurs_gateway.pg_schema import PgSchemaStore

SCHEMA_LOCK = 0x6B757273_6B657973 & 0x7FFFFFFFFFFFFFFF  # "kurskeys"

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_api_keys (
  id text PRIMARY KEY,
  hash text NOT NULL,
  name text NOT NULL,
  owner text NOT NULL,
  scopes text NOT NULL,
  created_at timestamptz NOT NULL,
  quota_per_day bigint,
  quota_per_month bigint,
  rate_per_second double precision,
  burst integer,
  expires_at timestamptz,
  revoked_at timestamptz,
  updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_api_keys_updated ON gateway_api_keys (updated_at);
"""


class PgKeyStore(PgSchemaStore):
    WHAT = "key store"
    SCHEMA = PG_SCHEMA
    SCHEMA_LOCK = SCHEMA_LOCK
    MAX_POOL = 2

    async def insert(self, record: KeyRecord) -> None:
        await self.pool.execute(
            f"INSERT INTO gateway_api_keys ({COLUMNS}) "  # noqa: S608
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
            record.id,
            record.hash,
            record.name,
            record.owner,
            ",".join(sorted(record.scopes)),
            record.created_at,
            record.quota_per_day,
            record.quota_per_month,
            record.rate_per_second,
            record.burst,
            record.expires_at,
            record.revoked_at,
            record.updated_at,
        )

    async def _select(self, where: str, *args: Any) -> list[KeyRecord]:
        rows = await self.pool.fetch(
            f"SELECT {COLUMNS} FROM gateway_api_keys {where} ORDER BY created_at, id",  # noqa: S608
            *args,
        )
        return [row_to_record(tuple(row)) for row in rows]

    async def get(self, key_id: str) -> KeyRecord | None:
        rows = await self._select("WHERE id = $1", key_id)
        return rows[0] if rows else None

    async def all(self) -> list[KeyRecord]:
        return await self._select("")

    async def changed_since(self, moment: dt.datetime) -> list[KeyRecord]:
        return await self._select("WHERE updated_at >= $1", moment)

    async def revoke(self, key_id: str, moment: dt.datetime) -> KeyRecord | None:
        await self.pool.execute(
            "UPDATE gateway_api_keys SET revoked_at = COALESCE(revoked_at, $1), updated_at = $1"
            " WHERE id = $2",
            moment,
            key_id,
        )
        return await self.get(key_id)
