"""The key store on PostgreSQL: create, find, revoke, poll for changes; no key in clear."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kurs_gateway.keys import manage
from kurs_gateway.keys.meter import Limits
from kurs_gateway.keys.registry import KeyRegistry
from kurs_gateway.keys.store import open_store
from support.pg import scratch_database

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with scratch_database("kurs_test_keys") as url:
        yield url


async def test_keys_on_postgresql(pg_url: str) -> None:
    store = open_store(pg_url)
    await store.open()
    other = open_store(pg_url)
    await other.open()  # a second replica: the schema step is idempotent
    try:
        spec = manage.checked(name="pg", scopes="read,bulk", quota_per_day=10, expires_at=None)
        record, key = await manage.create(store, spec)
        registry = KeyRegistry(other, [], Limits(rate=5, burst=10), refresh_seconds=0.1)
        await registry.load()
        found = await registry.verify(key)
        assert found is not None
        assert found.scopes == {"read", "bulk"}
        assert found.limits == Limits(rate=5, burst=10, per_day=10)
        assert await registry.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        revoked = await manage.revoke(store, record.id)
        assert revoked is not None
        assert revoked.revoked_at is not None
        assert await registry.refresh() >= 1
        seen = registry.check(key)
        assert getattr(seen, "revoked", None) is True
        since = await store.changed_since(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        assert [r.id for r in since] == [record.id]
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("SELECT * FROM gateway_api_keys")
        finally:
            await conn.close()
        text = repr([tuple(r) for r in rows])
        assert record.id in text
        assert key not in text
        assert key[18:] not in text
    finally:
        await other.close()
        await store.close()
