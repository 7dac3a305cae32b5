"""Managed API keys on two real gateways sharing one key database and one Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import ingest_fixing, serve_gateway
from kurs_gateway.keys import manage
from kurs_gateway.keys.store import open_store
from kurs_rates import server as rates_server
from kurs_rates.server import RatesServer
from kurs_rates.settings import RatesSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

REDIS_URL = "redis://127.0.0.1:6379/0"
READ_FILES = "import sys\nfor name in sys.argv[1:]:\n    sys.stdout.buffer.write(open(name, 'rb').read())"
BATCH = 4


@dataclass
class Gateways:
    a: str
    b: str
    db: Path
    admin: str
    issued: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RatesServer]:
    """A rates service with a few fixings: all the gateways need (no collector or validator)."""
    path = tmp_path_factory.mktemp("keys-rates") / "rates.sqlite3"
    service = await rates_server.start(RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{path}"))
    try:
        await ingest_fixing(service.port, "2025-01-02", {"USD": "1.0321", "GBP": "0.82990"})
        await ingest_fixing(service.port, "2025-01-03", {"USD": "1.0299", "GBP": "0.83005"})
        yield service
    finally:
        await service.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(rates: RatesServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateways]:
    db = tmp_path_factory.mktemp("keys-db") / "gateway.sqlite3"
    url = f"sqlite:///{db}"
    store = open_store(url)
    await store.open()
    _, admin = await manage.create(store, manage.checked(name="ops", scopes="admin,read"))
    await store.close()
    prefix = f"kurs:test:keys:{uuid.uuid4().hex}:"
    common: dict[str, Any] = {
        "auth": "keys",
        "database_url": url,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "keys_refresh_seconds": 0.5,
        "limit_batch": BATCH,
        "limit_sync_seconds": 0.05,
    }
    ports = (rates.port, 0, 0)
    try:
        async with serve_gateway(*ports, **common) as a, serve_gateway(*ports, **common) as b:
            yield Gateways(a, b, db, admin, [admin])
    finally:
        client = aioredis.from_url(REDIS_URL)
        async for name in client.scan_iter(match=f"{prefix}*"):
            await client.delete(name)
        await client.aclose()


async def create(gw: Gateways, **body: Any) -> str:
    async with httpx.AsyncClient(base_url=gw.a, headers={"X-API-Key": gw.admin}) as c:
        reply = await c.post("/admin/keys", json=body)
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["key"]
    gw.issued.append(key)
    return key


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def test_a_key_works_only_for_its_scopes(gw: Gateways) -> None:
    reader = await create(gw, name="reader", scopes=["read"])
    streamer = await create(gw, name="streamer", scopes=["stream"])
    async with httpx.AsyncClient(base_url=gw.a) as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/rates/latest")).status_code == 401
        unknown = "kurs_000000000000_" + "A" * 43
        assert (await c.get("/rates/latest", headers={"X-API-Key": unknown})).status_code == 401
        ok = {"Authorization": f"Bearer {reader}"}
        assert (await c.get("/rates/latest", headers=ok)).status_code == 200
        assert (await c.get("/rates/latest", headers=ok)).status_code == 200  # fast path too
        series = await c.get(
            "/rates/timeseries", params={"start_date": "2025-01-01", "end_date": "2025-01-10"}, headers=ok
        )
        assert series.status_code == 403
        assert "bulk" in series.json()["detail"]
        assert (await c.get("/admin/keys", headers=ok)).status_code == 403
        gql = await c.post(
            "/graphql",
            json={"query": '{ timeseries(startDate: "2025-01-02", endDate: "2025-01-03") { base } }'},
            headers=ok,
        )
        assert gql.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await c.get("/rates/latest", headers={"X-API-Key": streamer})).status_code == 403
        bad = await c.post(
            "/admin/keys", json={"name": "x", "scopes": ["write"]}, headers={"X-API-Key": gw.admin}
        )
        assert bad.status_code == 400
        assert bad.json()["invalid_params"][0]["name"] == "scopes"
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(gw.a, f"/ws/rates/stream?base=EUR&api_key={reader}")):
            pass
    assert info.value.response.status_code == 403
    async with connect(ws_url(gw.b, f"/ws/rates/stream?base=EUR&api_key={streamer}")) as socket:
        assert '"snapshot"' in str(await asyncio.wait_for(socket.recv(), timeout=10))


async def test_a_revoked_key_is_refused_on_the_other_gateway_within_5_seconds(gw: Gateways) -> None:
    key = await create(gw, name="to revoke", scopes=["read"])
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=gw.a) as a, httpx.AsyncClient(base_url=gw.b) as b:
        assert (await b.get("/rates/latest", headers=headers)).status_code == 200  # first sight on B
        key_id = key[:17]
        revoked = await a.delete(f"/admin/keys/{key_id}", headers={"X-API-Key": gw.admin})
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"]
        started = time.monotonic()
        assert (await a.get("/rates/latest", headers=headers)).status_code == 401  # at once on A
        while (await b.get("/rates/latest", headers=headers)).status_code == 200:
            assert time.monotonic() - started < 5, "B still accepts the revoked key"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        refused = await b.get("/rates/latest", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert elapsed < 5


async def test_two_gateways_sharing_redis_enforce_one_quota(gw: Gateways) -> None:
    quota = 30
    key = await create(gw, name="quota", scopes=["read"], quota_per_day=quota)
    headers = {"X-API-Key": key}
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=gw.a) as a, httpx.AsyncClient(base_url=gw.b) as b:

        async def worker(client: httpx.AsyncClient) -> None:
            for _ in range(12):
                statuses.append((await client.get("/rates/latest", headers=headers)).status_code)

        await asyncio.gather(*(worker(c) for c in (a, b, a, b, a, b)))
        admitted = statuses.count(200)
        # The documented bound: Q - 1 + gateways x batch.
        assert quota <= admitted <= quota - 1 + 2 * BATCH, statuses
        assert statuses.count(429) == len(statuses) - admitted
        refused = await a.get("/rates/latest", headers=headers)
        assert refused.status_code == 429
        assert "daily quota" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        await asyncio.sleep(0.3)  # B's last counts reach Redis
        usage = (await a.get("/usage", headers=headers)).json()
    assert usage["requests_today"]["total"] == admitted
    assert usage["quota"]["remaining_today"] == 0


async def test_usage_counts_match_the_requests_made(gw: Gateways) -> None:
    key = await create(gw, name="usage", scopes=["read", "bulk"], quota_per_day=1000, quota_per_month=5000)
    headers = {"X-API-Key": key}
    series = {"start_date": "2025-01-01", "end_date": "2025-01-31", "symbols": "USD"}
    async with httpx.AsyncClient(base_url=gw.a) as a, httpx.AsyncClient(base_url=gw.b) as b:
        for client in (a, b, a):
            assert (await client.get("/rates/latest", headers=headers)).status_code == 200
        for client in (b, a):
            assert (await client.get("/rates/timeseries", params=series, headers=headers)).status_code == 200
        assert (await b.get("/v6/" + key + "/latest/USD")).status_code == 200  # counted as read
        quota = (await a.get("/v6/" + key + "/quota")).json()
        await asyncio.sleep(0.3)
        usage = (await a.get("/usage", headers=headers)).json()
        again = (await b.get("/usage", headers=headers)).json()
    assert usage["key"] == {"id": key[:17], "name": "usage", "scopes": ["bulk", "read"]}
    assert usage["requests_today"] == {"total": 6, "read": 4, "bulk": 2, "stream": 0, "alerts": 0, "admin": 0}
    assert usage["requests_this_month"]["total"] == 6
    assert usage["quota"] == {
        "per_day": 1000,
        "remaining_today": 994,
        "per_month": 5000,
        "remaining_this_month": 4994,
    }
    assert usage["resets_at"]["day"].endswith("T00:00:00Z")
    assert again["requests_today"] == usage["requests_today"]  # /usage itself is not counted
    assert quota["plan_quota"] == 5000
    assert 994 <= quota["requests_remaining"] <= 997  # min(month, today); B syncs within 50 ms


async def test_the_database_holds_no_key_in_clear(gw: Gateways) -> None:
    await create(gw, name="one more", scopes=["read"])
    # Read by another process: closing a file of an open SQLite database in this process would
    # drop the gateways' POSIX locks on it.
    files = [str(p) for p in gw.db.parent.glob(gw.db.name + "*")]
    assert any(f.endswith(".sqlite3") for f in files)
    dump = [sys.executable, "-c", READ_FILES, *files]
    stored = (await asyncio.to_thread(subprocess.run, dump, capture_output=True, check=True)).stdout
    assert len(gw.issued) >= 3
    for key in gw.issued:
        assert key[:17].encode() in stored  # the readable prefix is the record's id
        assert key.encode() not in stored
        assert key[18:].encode() not in stored  # nor the secret part alone
    async with httpx.AsyncClient(base_url=gw.b, headers={"X-API-Key": gw.admin}) as c:
        listed = (await c.get("/admin/keys")).json()["keys"]
    assert {k["id"] for k in listed} >= {k[:17] for k in gw.issued}
    assert all("hash" not in k and "key" not in k for k in listed)


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    return subprocess.run(
        [sys.executable, "-m", "kurs_gateway", "keys", "--database-url", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


async def test_the_cli_creates_lists_and_revokes(gw: Gateways) -> None:
    made = await asyncio.to_thread(
        cli, gw.db, "create", "--name", "from cli", "--scopes", "read", "--quota", "100/day"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert "shown only this once" in made.stderr
    gw.issued.append(key)
    async with httpx.AsyncClient(base_url=gw.b, headers={"X-API-Key": key}) as c:
        assert (await c.get("/rates/latest")).status_code == 200
        listed = await asyncio.to_thread(cli, gw.db, "list")
        assert f"{key[:17]}\tactive\tread\t100/day\tfrom cli" in listed.stdout
        assert key not in listed.stdout
        bad = await asyncio.to_thread(cli, gw.db, "create", "--name", "x", "--scopes", "root")
        assert bad.returncode == 2
        assert "scopes" in bad.stderr
        revoked = await asyncio.to_thread(cli, gw.db, "revoke", key[:17])
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        while (await c.get("/rates/latest")).status_code == 200:
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.05)
