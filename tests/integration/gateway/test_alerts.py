"""Alerts end to end: rules over REST, real ECB fixings published into a real rates service, the
real gateway evaluating them, webhooks to a local receiver that fails, times out and recovers
(every alert arrives, none twice), the dead-letter list, and the WebSocket."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
import pytest_asyncio
import websockets

from conftest import ingest_fixing, serve_gateway
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.observation import REFERENCE, Observation
from kurs_rates import server as rates_server
from kurs_rates.server import RatesServer
from kurs_rates.settings import RatesSettings
from kurs_validator import server as validator_server
from kurs_validator.settings import ValidatorSettings
from support.ecb_csv import published
from support.webhook_receiver import Receiver, serve_receiver

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

DAYS = [f"2025-01-{d:02d}" for d in (15, 16, 17, 20, 21, 22, 23, 24, 27, 28, 29, 30, 31)]


@dataclass
class Setup:
    rates: RatesServer
    client: httpx.AsyncClient
    receiver: Receiver
    gateway_url: str
    validator_port: int


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(history_csv: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    tmp: Path = tmp_path_factory.mktemp("alerts")
    rates = await rates_server.start(
        RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{tmp / 'rates.sqlite3'}")
    )
    validator = await validator_server.start(
        ValidatorSettings(
            address="127.0.0.1:0",
            rates_address=f"127.0.0.1:{rates.port}",
            database_url=f"sqlite:///{tmp / 'validator.sqlite3'}",
        )
    )
    receiver = Receiver()
    try:
        await ingest_fixing(rates.port, DAYS[0], published(history_csv, DAYS[0]))
        async with (
            serve_receiver(receiver) as receiver_url,
            serve_gateway(
                rates.port,
                0,
                validator.port,
                heartbeat_seconds=0.5,
                alerts_database_url=f"sqlite:///{tmp / 'alerts.sqlite3'}",
                alerts_webhook_timeout_seconds=0.5,
                alerts_retry_base_seconds=0.05,
                alerts_retry_max_seconds=0.2,
                alerts_max_attempts=4,
            ) as url,
            httpx.AsyncClient(base_url=url, timeout=10, headers={"x-api-key": "k1"}) as client,
        ):
            receiver.url = receiver_url
            yield Setup(rates, client, receiver, url, validator.port)
    finally:
        await validator.stop(0)
        await rates.stop(0)


async def create(setup: Setup, **fields: Any) -> dict[str, Any]:
    reply = await setup.client.post("/alerts/rules", content=orjson.dumps(fields))
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    setup.receiver.secrets[body["id"]] = body["secret"]
    return body


async def seen_by_gateway(setup: Setup, sequence: int) -> None:
    for _ in range(200):
        latest = (await setup.client.get("/rates/latest", params={"base": "EUR", "symbols": "USD"})).json()
        if latest["sequence"] >= sequence:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway never saw sequence {sequence}")


async def settled(setup: Setup, seconds: float = 20) -> None:
    for _ in range(int(seconds / 0.05)):
        pending = (await setup.client.get("/alerts/deliveries", params={"state": "pending"})).json()
        if not pending["deliveries"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries still pending: {pending}")


async def test_crud_validation(setup: Setup) -> None:
    bad = await setup.client.post(
        "/alerts/rules", content=b'{"kind": "threshold", "base": "EUR", "symbol": "USD"}'
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["invalid_params"][0]["name"] == "threshold"
    unknown = await setup.client.post(
        "/alerts/rules", content=b'{"kind": "threshold", "base": "EUR", "symbol": "ZZZ", "threshold": "1"}'
    )
    assert unknown.json()["invalid_params"][0]["name"] == "symbol"
    assert (await setup.client.post("/alerts/rules", content=b"{")).json()["invalid_params"][0][
        "name"
    ] == "body"
    rule = await create(setup, kind="threshold", base="EUR", symbol="GBP", threshold="5", direction="above")
    assert "secret" not in (await setup.client.get(f"/alerts/rules/{rule['id']}")).json()
    other = await setup.client.get(f"/alerts/rules/{rule['id']}", headers={"x-api-key": "k2"})
    assert other.status_code == 404
    assert rule["id"] in [r["id"] for r in (await setup.client.get("/alerts/rules")).json()["rules"]]
    assert (await setup.client.delete(f"/alerts/rules/{rule['id']}")).status_code == 204
    assert (await setup.client.delete(f"/alerts/rules/{rule['id']}")).status_code == 404
    state = await setup.client.get("/alerts/deliveries", params={"state": "lost"})
    assert state.json()["invalid_params"][0]["name"] == "state"


async def test_webhooks_fail_time_out_recover_and_none_is_lost_or_doubled(
    setup: Setup, history_csv: str
) -> None:
    values = [Decimal(published(history_csv, day)["USD"]) for day in DAYS]
    threshold = sorted(values)[len(values) // 2]  # the median: the series crosses it
    threshold += Decimal("0.00005")  # never equal to a published figure
    sides = [v > threshold for v in values]
    crossings = sum(1 for a, b in itertools.pairwise(sides) if a != b)
    assert crossings >= 2
    rules = {}
    for path in ("/ok", "/flaky", "/slow", "/down"):
        rules[path] = await create(
            setup,
            kind="threshold",
            base="EUR",
            symbol="USD",
            threshold=str(threshold),
            direction="either",
            webhook_url=setup.receiver.url + path,
        )
    ws_rule = await create(setup, kind="threshold", base="EUR", symbol="USD", threshold=str(threshold))
    ws_url = setup.gateway_url.replace("http://", "ws://") + "/ws/alerts?api_key=k1"
    async with websockets.connect(ws_url) as ws:
        for day in DAYS[1:]:
            sequence = await ingest_fixing(setup.rates.port, day, published(history_csv, day))
            await seen_by_gateway(setup, sequence)  # one change at a time, as a day's fixing comes
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(20):
            while len([e for e in seen if e["rule_id"] == ws_rule["id"]]) < crossings:
                message = orjson.loads(await ws.recv())
                if message["type"] == "alert":
                    seen.append(message)
    assert {e["rule_id"] for e in seen} == {ws_rule["id"], *(r["id"] for r in rules.values())}
    await settled(setup)
    receiver = setup.receiver
    assert receiver.bad_signatures == 0
    for path in ("/ok", "/flaky", "/slow"):
        acted = {key for p, key in receiver.acted if p == path}
        assert len(acted) == crossings, path  # every alert arrived, each under its own key
        assert all(key.startswith(rules[path]["id"] + ":") for key in acted)
        answered = {key: n for (p, key), n in receiver.answered_ok.items() if p == path}
        # no event is sent again once answered 2xx in time; the slow one was retried under the
        # same key after its deadline, and the receiver's idempotency check kept it to one action
        assert set(answered.values()) == ({2} if path == "/slow" else {1}), (path, answered)
    assert max(n for (p, _), n in receiver.attempts.items() if p == "/flaky") == 3
    assert (
        max(n for (p, _), n in receiver.attempts.items() if p == "/slow") == 2
    )  # the retry after the timeout
    # /down never answered 2xx: four attempts each, then the dead-letter list
    dead = (await setup.client.get("/alerts/deliveries", params={"state": "dead"})).json()["deliveries"]
    assert sorted(d["event_id"] for d in dead) == sorted(k for (p, k) in receiver.attempts if p == "/down")
    assert len(dead) == crossings
    assert all(d["attempts"] == 4 and d["last_error"] == "HTTP 503" for d in dead)
    # the receiver recovers; the dead letters are put back and arrive once
    receiver.down = False
    for d in dead:
        reply = await setup.client.post(f"/alerts/deliveries/{d['event_id']}/retry")
        assert reply.status_code == 200
    await settled(setup)
    assert {k for (p, k) in receiver.acted if p == "/down"} == {d["event_id"] for d in dead}
    delivered = (
        await setup.client.get("/alerts/deliveries", params={"state": "delivered", "limit": 1000})
    ).json()
    assert len(delivered["deliveries"]) == 4 * crossings
    events = [receiver.bodies[k] for (p, k) in receiver.acted if p == "/ok"]
    assert sorted(Decimal(e["rate"]) for e in events) == sorted(
        v for a, b, v in zip(sides, sides[1:], values[1:], strict=False) if a != b
    )


async def test_a_data_quality_alert_reaches_the_webhook_and_the_websocket(setup: Setup) -> None:
    rule = await create(setup, kind="anomaly", currency="CHF", webhook_url=setup.receiver.url + "/ok")
    stale = await create(setup, kind="stale_source", source="ecb")
    ws_url = setup.gateway_url.replace("http://", "ws://") + "/ws/alerts?api_key=k1"
    at = dt.datetime(2025, 2, 3, 15, tzinfo=dt.UTC)
    bad = Observation("ecb", "test", REFERENCE, "EUR", "CHF", "-0.94", "2025-02-03", at)
    async with websockets.connect(ws_url) as ws:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{setup.validator_port}") as channel:
            reply = await validator_pb2_grpc.ValidatorServiceStub(channel).SubmitObservations(
                validator_pb2.SubmitObservationsRequest(observations=[bad.to_proto()])
            )
        assert [r.code for r in reply.rejections] == ["non_positive"]
        async with asyncio.timeout(10):
            while True:
                message = orjson.loads(await ws.recv())
                if message["type"] == "alert":
                    break
    assert message["rule_id"] == rule["id"]
    assert message["anomaly"]["reason"] == "non_positive"
    assert message["anomaly"]["value"] == "-0.94"
    # The flat shape alert events always carried (empty fields left out), read from `observation`.
    anomaly = message["anomaly"]
    assert list(anomaly) == [
        "id", "reason", "detail", "source", "feed", "kind", "base", "quote", "value", "currency", "date",
        "observed_at", "detected_at",
    ]  # fmt: skip
    assert isinstance(anomaly["id"], int)
    assert [anomaly[k] for k in ("source", "feed", "kind", "base", "quote", "currency", "date")] == [
        "ecb", "test", "OBSERVATION_KIND_REFERENCE", "EUR", "CHF", "CHF", "2025-02-03",
    ]  # fmt: skip
    assert anomaly["observed_at"] == "2025-02-03T15:00:00Z"
    await settled(setup)
    delivered = [k for p, k in setup.receiver.acted if p == "/ok" and k.startswith(rule["id"] + ":anomaly:")]
    assert delivered == [message["id"]]
    assert not any(k.startswith(stale["id"]) for _, k in setup.receiver.acted)  # no stale source here
