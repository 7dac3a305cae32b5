"""The alert store on PostgreSQL (alerts.pg_store), against the real server on 127.0.0.1:5432 in a
database of its own: the store contract (rules, an event queued once, claims that never hand one
delivery to two gateways, leases, dead letters) and two real gateways sharing it, fed by a real
rates service: a rule made on one is evaluated by the other, a rule deleted on one stops firing
on the other, and every alert reaches the webhook once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import ingest_fixing, serve_gateway
from kurs_gateway.alerts.pg_store import PgAlertStore
from kurs_gateway.alerts.rules import Rule
from kurs_gateway.alerts.store import open_alert_store
from kurs_rates import server as rates_server
from kurs_rates.settings import RatesSettings
from support.ecb_csv import published
from support.pg import scratch_database
from support.webhook_receiver import Receiver, serve_receiver

pytestmark = pytest.mark.integration

DAYS = [f"2025-01-{d:02d}" for d in (15, 16, 17, 20, 21, 22, 23, 24, 27, 28, 29, 30, 31)]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with scratch_database("kurs_test_alerts") as url:
        yield url


def rule(rule_id: str, key: str = "k1", url: str | None = "http://127.0.0.1:9/hook") -> Rule:
    return Rule(rule_id, key, "threshold", "EUR", "USD", "either", threshold="1.1", webhook_url=url)


def event(rule_id: str, sequence: int) -> dict[str, Any]:
    return {"id": f"{rule_id}:{sequence}", "rule_id": rule_id, "rate": "1.2"}


async def test_the_store_contract_on_postgresql(pg_url: str) -> None:
    store = open_alert_store(pg_url, lease_seconds=30)
    assert isinstance(store, PgAlertStore)
    other = PgAlertStore(pg_url, lease_seconds=30)
    await asyncio.gather(store.open(), other.open())  # two replicas create the schema once
    try:
        empty = await store.rules_version()
        await store.add_rule(rule("r1"), "s1")
        await store.add_rule(rule("r2", "k2", None), "s2")
        assert [(r.id, s) for r, s in await other.rules()] == [("r1", "s1"), ("r2", "s2")]
        assert [r.id for r, _ in await other.rules("k2")] == ["r2"]
        assert await other.count_rules("k1") == 1
        added = await other.rules_version()
        assert added != empty
        assert not await other.delete_rule("r1", "k2")  # another key's rule
        assert await other.delete_rule("r2", "k2")
        assert await store.rules_version() > added > empty  # moves on a delete too, never back

        rows = [(rule("r1"), "s1", event("r1", n)) for n in range(1, 6)]
        rows.append((rule("r2", "k2", None), "s2", event("r2", 1)))  # no webhook: not queued
        assert await store.enqueue(rows) == 5
        assert await other.enqueue(rows[:3]) == 0  # another gateway saw the same change: queued once
        # two gateways claiming at once: each due delivery goes to exactly one of them
        now = time.time()
        first, second = await asyncio.gather(store.due(now, 3), other.due(now, 3))
        claimed = [d.event_id for d in first + second]
        assert sorted(claimed) == sorted(f"r1:{n}" for n in range(1, 6))
        assert await store.due(now, 10) == []  # leased
        assert await store.due(now + 31, 10) != []  # the lease ran out: due again
        delivery = first[0]
        assert (delivery.secret, orjson.loads(delivery.payload)["rule_id"]) == ("s1", "r1")
        await store.delivered(delivery.event_id, 1)
        await store.failed(second[0].event_id, 8, "HTTP 503", None)
        await store.failed(second[1].event_id, 1, "timed out", now + 100)
        dead = await other.deliveries("k1", "dead", 10)
        assert [(d["event_id"], d["attempts"], d["last_error"]) for d in dead] == [
            (second[0].event_id, 8, "HTTP 503")
        ]
        assert dead[0]["event"] == event("r1", int(second[0].event_id.split(":")[1]))
        assert [d["event_id"] for d in await other.deliveries("k1", "delivered", 10)] == [delivery.event_id]
        assert not await other.requeue(second[0].event_id, "k2")
        assert await other.requeue(second[0].event_id, "k1")
        assert second[0].event_id in [d.event_id for d in await store.due(time.time() + 1, 10)]
        assert await store.next_due() is not None
    finally:
        await asyncio.gather(store.close(), other.close())


async def _rules_of(client: httpx.AsyncClient) -> list[str]:
    return [r["id"] for r in (await client.get("/alerts/rules")).json()["rules"]]


async def test_two_gateways_share_rules_and_deliver_each_alert_once(
    pg_url: str, history_csv: str, tmp_path: Path
) -> None:
    values = [Decimal(published(history_csv, day)["USD"]) for day in DAYS]
    threshold = sorted(values)[len(values) // 2] + Decimal("0.00005")
    sides = [v > threshold for v in values]
    crossing_days = [DAYS[i + 1] for i, (a, b) in enumerate(itertools.pairwise(sides)) if a != b]
    assert len(crossing_days) >= 3
    rates = await rates_server.start(
        RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{tmp_path / 'rates.sqlite3'}")
    )
    receiver = Receiver()
    settings: dict[str, Any] = {
        "heartbeat_seconds": 0.5,
        "alerts_database_url": pg_url,
        "alerts_refresh_seconds": 0.1,
        "alerts_webhook_timeout_seconds": 2.0,
        "alerts_retry_base_seconds": 0.05,
    }
    try:
        await ingest_fixing(rates.port, DAYS[0], published(history_csv, DAYS[0]))
        async with contextlib.AsyncExitStack() as stack:
            receiver.url = await stack.enter_async_context(serve_receiver(receiver))
            url_a = await stack.enter_async_context(serve_gateway(rates.port, 0, **settings))
            gateway_b = contextlib.AsyncExitStack()
            url_b = await gateway_b.enter_async_context(serve_gateway(rates.port, 0, **settings))
            headers = {"x-api-key": "k1"}
            a = await stack.enter_async_context(httpx.AsyncClient(base_url=url_a, headers=headers))
            b = await stack.enter_async_context(httpx.AsyncClient(base_url=url_b, headers=headers))

            async def create(client: httpx.AsyncClient, path: str) -> str:
                fields = {
                    "kind": "threshold",
                    "base": "EUR",
                    "symbol": "USD",
                    "threshold": str(threshold),
                    "direction": "either",
                    "webhook_url": receiver.url + path,
                }
                reply = await client.post("/alerts/rules", content=orjson.dumps(fields))
                assert reply.status_code == 201, reply.text
                body = reply.json()
                receiver.secrets[body["id"]] = body["secret"]
                return str(body["id"])

            kept = await create(b, "/ok")  # made on B, evaluated by A once B is gone
            dropped = await create(a, "/flaky")  # made on A, deleted on B: A must stop firing it
            assert await _rules_of(a) == await _rules_of(b) == [kept, dropped]
            assert (await b.delete(f"/alerts/rules/{dropped}")).status_code == 204
            await asyncio.sleep(0.5)  # both gateways re-read the rules (every 0.1 s)
            split = DAYS.index(crossing_days[1]) + 1
            async with gateway_b:  # both gateways up for the first two crossings
                for day in DAYS[1:split]:
                    await ingest_fixing(rates.port, day, published(history_csv, day))
                await _settled(a, receiver, kept, 2)
            for day in DAYS[split:]:  # B is gone: A alone
                await ingest_fixing(rates.port, day, published(history_csv, day))
            await _settled(a, receiver, kept, len(crossing_days))
        acted = {key for path, key in receiver.acted if path == "/ok"}
        assert all(key.startswith(f"{kept}:") for key in acted)
        assert len(acted) == len(crossing_days)  # every alert arrived
        # each sent once, though two gateways evaluated and queued the first ones
        assert set(receiver.attempts.values()) == {1}
        assert not [key for path, key in receiver.attempts if path == "/flaky"]  # the deleted rule
        assert receiver.bad_signatures == 0
    finally:
        await rates.stop(0)


async def _settled(client: httpx.AsyncClient, receiver: Receiver, rule_id: str, alerts: int) -> None:
    for _ in range(400):
        acted = [key for path, key in receiver.acted if path == "/ok" and key.startswith(rule_id)]
        pending = (await client.get("/alerts/deliveries", params={"state": "pending"})).json()["deliveries"]
        if len(acted) >= alerts and not pending:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(acted)} alerts of {alerts} arrived; pending {pending}")
