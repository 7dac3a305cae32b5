"""The alert store in PostgreSQL, shared by every gateway replica (asyncpg).

Same contract as the SQLite store (alerts.store.AlertStore). The tables are created at open if
missing, under an advisory lock so replicas starting together do not race; their names start
with `gateway_alert_` so they sit beside the rates' and keys' tables in one database.

Shared by several gateways:

* every gateway evaluates every rule and writes the same event ids (`<rule>:<sequence>`, the
  rates stream's sequence, global when the rates replicas share Redis); `ON CONFLICT DO NOTHING`
  keeps one row per event, so an alert is queued once however many gateways saw it;
* `due()` claims rows with `FOR UPDATE SKIP LOCKED` and leases them (`next_at` moves
  `lease_seconds` ahead) in the same statement: one gateway attempts a delivery, and a gateway
  that dies mid-attempt leaves the row due again when the lease runs out (at least once, never
  two attempts at the same time);
* rules added or deleted on one gateway reach the others through `rules_version()`, a counter
  bumped in the same transaction (the engine re-reads the rules when it moves).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import orjson

from kurs_gateway.alerts.rules import Rule
from kurs_gateway.alerts.store import Delivery, delivery_row
from kurs_gateway.pg_schema import PgSchemaStore

SCHEMA_LOCK = 0x6B757273_616C7274 & 0x7FFFFFFFFFFFFFFF  # "kursalrt"

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_alert_rules (
  seq bigserial UNIQUE,
  id text PRIMARY KEY,
  api_key text NOT NULL,
  body text NOT NULL,
  secret text NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_alert_rules_key ON gateway_alert_rules (api_key, seq);
-- bumped in the transaction of every rule added or deleted: other gateways poll it
CREATE TABLE IF NOT EXISTS gateway_alert_rules_version (
  id integer PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL
);
INSERT INTO gateway_alert_rules_version VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS gateway_alert_deliveries (
  event_id text PRIMARY KEY,
  rule_id text NOT NULL,
  api_key text NOT NULL,
  url text NOT NULL,
  secret text NOT NULL,
  payload bytea NOT NULL,
  state text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_at double precision NOT NULL,
  last_error text NOT NULL DEFAULT '',
  created_at double precision NOT NULL,
  done_at double precision
);
CREATE INDEX IF NOT EXISTS gateway_alert_deliveries_due ON gateway_alert_deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS gateway_alert_deliveries_key ON gateway_alert_deliveries (api_key, state);
"""

_BUMP = "UPDATE gateway_alert_rules_version SET version = version + 1 WHERE id = 1"

_CLAIM = """
UPDATE gateway_alert_deliveries d SET next_at = $3
FROM (
  SELECT event_id FROM gateway_alert_deliveries
  WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED
) due
WHERE d.event_id = due.event_id
RETURNING d.event_id, d.rule_id, d.url, d.secret, d.payload, d.attempts
"""

_ENQUEUE = """
INSERT INTO gateway_alert_deliveries
  (event_id, rule_id, api_key, url, secret, payload, state, next_at, created_at)
SELECT e, r, k, u, s, p, 'pending', $8, $8
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::int[])
  AS t(e, r, k, u, s, p, i)
ORDER BY i
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


class PgAlertStore(PgSchemaStore):
    WHAT = "alert store"
    SCHEMA = PG_SCHEMA
    SCHEMA_LOCK = SCHEMA_LOCK
    MAX_POOL = 4
    shared = True

    def __init__(self, url: str, *, lease_seconds: float = 60.0, timeout: float = 5.0) -> None:
        super().__init__(url, timeout)
        self.lease_seconds = lease_seconds

    # rules

    async def add_rule(self, rule: Rule, secret: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO gateway_alert_rules (id, api_key, body, secret) VALUES ($1, $2, $3, $4)",
                rule.id,
                rule.api_key,
                orjson.dumps(asdict(rule)).decode(),
                secret,
            )
            await conn.execute(_BUMP)

    async def rules(self, api_key: str | None = None) -> list[tuple[Rule, str]]:
        if api_key is None:
            rows = await self.pool.fetch("SELECT body, secret FROM gateway_alert_rules ORDER BY seq")
        else:
            rows = await self.pool.fetch(
                "SELECT body, secret FROM gateway_alert_rules WHERE api_key = $1 ORDER BY seq", api_key
            )
        return [(Rule(**orjson.loads(row["body"])), row["secret"]) for row in rows]

    async def rules_version(self) -> int:
        return int(await self.pool.fetchval("SELECT version FROM gateway_alert_rules_version"))

    async def count_rules(self, api_key: str) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM gateway_alert_rules WHERE api_key = $1", api_key
        )
        return int(value or 0)

    async def delete_rule(self, rule_id: str, api_key: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM gateway_alert_rules WHERE id = $1 AND api_key = $2", rule_id, api_key
            )
            if str(status) == "DELETE 0":
                return False
            await conn.execute(_BUMP)
        return True

    # deliveries

    async def enqueue(self, rows: list[tuple[Rule, str, dict[str, Any]]]) -> int:
        hooks = [(r, secret, e) for r, secret, e in rows if r.webhook_url]
        if not hooks:
            return 0
        stored = await self.pool.fetch(
            _ENQUEUE,
            [e["id"] for _, _, e in hooks],
            [r.id for r, _, _ in hooks],
            [r.api_key for r, _, _ in hooks],
            [r.webhook_url for r, _, _ in hooks],
            [secret for _, secret, _ in hooks],
            [orjson.dumps(e) for _, _, e in hooks],
            list(range(len(hooks))),
            time.time(),
        )
        return len(stored)

    async def due(self, now: float, limit: int) -> list[Delivery]:
        rows = await self.pool.fetch(_CLAIM, now, limit, now + self.lease_seconds)
        return [
            Delivery(r["event_id"], r["rule_id"], r["url"], r["secret"], bytes(r["payload"]), r["attempts"])
            for r in rows
        ]

    async def next_due(self) -> float | None:
        value = await self.pool.fetchval(
            "SELECT min(next_at) FROM gateway_alert_deliveries WHERE state = 'pending'"
        )
        return None if value is None else float(value)

    async def delivered(self, event_id: str, attempts: int) -> None:
        await self.pool.execute(
            "UPDATE gateway_alert_deliveries SET state = 'delivered', attempts = $1, done_at = $2, "
            "last_error = '' WHERE event_id = $3",
            attempts,
            time.time(),
            event_id,
        )

    async def failed(self, event_id: str, attempts: int, error: str, retry_at: float | None) -> None:
        """One more failed attempt; dead (the dead-letter list) when retry_at is None."""
        if retry_at is None:
            await self.pool.execute(
                "UPDATE gateway_alert_deliveries SET state = 'dead', attempts = $1, last_error = $2, "
                "done_at = $3 WHERE event_id = $4",
                attempts,
                error[:500],
                time.time(),
                event_id,
            )
        else:
            await self.pool.execute(
                "UPDATE gateway_alert_deliveries SET attempts = $1, last_error = $2, next_at = $3 "
                "WHERE event_id = $4",
                attempts,
                error[:500],
                retry_at,
                event_id,
            )

    async def deliveries(self, api_key: str, state: str, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT event_id, rule_id, url, payload, state, attempts, last_error, created_at, done_at "
            "FROM gateway_alert_deliveries WHERE api_key = $1 AND state = $2 "
            "ORDER BY created_at DESC LIMIT $3",
            api_key,
            state,
            limit,
        )
        return [delivery_row(tuple(r)) for r in rows]

    async def requeue(self, event_id: str, api_key: str) -> bool:
        status = await self.pool.execute(
            "UPDATE gateway_alert_deliveries SET state = 'pending', attempts = 0, next_at = $1, "
            "done_at = NULL WHERE event_id = $2 AND api_key = $3 AND state = 'dead'",
            time.time(),
            event_id,
            api_key,
        )
        return str(status) != "UPDATE 0"
