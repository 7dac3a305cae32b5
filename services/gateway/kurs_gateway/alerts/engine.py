"""The alert engine: loads the rules, evaluates them on every change of the live snapshot,
stores the events of webhook rules before delivering them, and fans every event out to the
WebSocket subscribers of its API key.

Data-quality rules (`anomaly`, `stale_source`) follow the validator's WatchAnomalies (resumed
after the last anomaly seen when the stream breaks).

`install(app, settings)` wraps the app's lifespan: the engine starts after the app's own
startup (the snapshot feed) and stops before its shutdown. Without
KURS_GATEWAY_ALERTS_DATABASE_URL there is no engine and the alert routes answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import FastAPI

from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.fanout import Fanout
from kurs_gateway.alerts.delivery import Deliverer
from kurs_gateway.alerts.rules import Evaluator, Rule
from kurs_gateway.alerts.store import open_alert_store
from kurs_gateway.anomalies import anomaly_json
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot
from kurs_gateway.tasks import cancel_all

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]  # (api key, event)


class AlertEngine:
    def __init__(
        self,
        settings: GatewaySettings,
        snapshot: LiveSnapshot,
        validator: validator_pb2_grpc.ValidatorServiceStub | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.validator = validator
        self.last_anomaly = 0
        # A delivery claimed from a shared store is leased for longer than one attempt can take.
        lease = 2 * settings.alerts_webhook_timeout_seconds + 30.0
        self.store = open_alert_store(settings.alerts_database_url, lease_seconds=lease)
        self.evaluator = Evaluator()
        self.secrets: dict[str, str] = {}
        self.fanout: Fanout[Event] = Fanout(settings.client_queue)
        self.deliverer = Deliverer(
            self.store,
            timeout=settings.alerts_webhook_timeout_seconds,
            max_attempts=settings.alerts_max_attempts,
            base_delay=settings.alerts_retry_base_seconds,
            max_delay=settings.alerts_retry_max_seconds,
        )
        self.evaluations = 0
        self.events = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._version = 0

    async def start(self) -> None:
        await self.store.open()
        self._version = await self.store.rules_version()
        for rule, secret in await self.store.rules():
            self.evaluator.add(rule)
            self.secrets[rule.id] = secret
        self._tasks = [
            asyncio.create_task(self._listen(), name="alerts-evaluate"),
            asyncio.create_task(self.deliverer.run(), name="alerts-deliver"),
        ]
        if self.store.shared:
            self._tasks.append(asyncio.create_task(self._follow_rules(), name="alerts-rules"))
        if self.validator is not None:
            self._tasks.append(asyncio.create_task(self._anomalies(), name="alerts-anomalies"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        await self.deliverer.close()
        await self.store.close()

    async def add(self, rule: Rule) -> str:
        """Store a new rule (durably) and arm it on the current rates; returns its secret."""
        secret = secrets.token_hex(32)
        await self.store.add_rule(rule, secret)
        self.secrets[rule.id] = secret
        self.evaluator.add(rule)
        self.evaluator.evaluate(self.snapshot.entries, (rule.base, rule.symbol), 0, time.time())
        return secret

    async def remove(self, rule_id: str, api_key: str) -> bool:
        if not await self.store.delete_rule(rule_id, api_key):
            return False
        self.evaluator.remove(rule_id)
        self.secrets.pop(rule_id, None)
        return True

    async def refresh_rules(self) -> bool:
        """Take in the rules other gateways added or deleted (a shared store); True if any."""
        version = await self.store.rules_version()
        if version == self._version:
            return False
        stored = {rule.id: (rule, secret) for rule, secret in await self.store.rules()}
        for rule_id in [r for r in self.evaluator.rules if r not in stored]:
            self.evaluator.remove(rule_id)
            self.secrets.pop(rule_id, None)
        added = [rule for rule_id, (rule, _) in stored.items() if rule_id not in self.evaluator.rules]
        for rule in added:
            self.secrets[rule.id] = stored[rule.id][1]
            self.evaluator.add(rule)
            # armed on the current rates, as a rule added here is
            self.evaluator.evaluate(self.snapshot.entries, (rule.base, rule.symbol), 0, time.time())
        self._version = version
        return True

    async def _follow_rules(self) -> None:
        while True:
            await asyncio.sleep(self.settings.alerts_refresh_seconds)
            try:
                await self.refresh_rules()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert rules refresh failed; retrying")

    async def on_change(self, codes: frozenset[str] | None, sequence: int) -> int:
        """Evaluate one change; store webhook events before delivery; returns events fired."""
        fired = self.evaluator.evaluate(self.snapshot.entries, codes, sequence, time.time())
        self.evaluations += 1
        return await self._fire(fired)

    async def on_anomaly(self, anomaly: dict[str, Any]) -> int:
        return await self._fire(self.evaluator.anomaly(anomaly, time.time()))

    async def _fire(self, fired: list[tuple[Rule, dict[str, Any]]]) -> int:
        if not fired:
            return 0
        self.events += len(fired)
        rows = [(rule, self.secrets.get(rule.id, ""), event) for rule, event in fired]
        if any(rule.webhook_url for rule, _ in fired):
            await self.store.enqueue(rows)
            self.deliverer.wake()
        for rule, event in fired:
            self.fanout.publish((rule.api_key, event))
        return len(fired)

    async def _listen(self) -> None:
        while True:
            try:
                with self.snapshot.listen() as sub:
                    if self.snapshot.ready:  # arm every rule on the current rates
                        self.evaluator.evaluate(
                            self.snapshot.entries, None, self.snapshot.sequence, time.time()
                        )
                    while True:
                        change = await sub.queue.get()
                        codes = None if change.resync or sub.overflowed else change.codes
                        sub.overflowed = False
                        await self.on_change(codes, change.sequence)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert evaluation failed; resubscribing")
                await asyncio.sleep(1.0)

    async def _anomalies(self) -> None:
        assert self.validator is not None
        delay = 0.2
        while True:
            try:
                call = self.validator.WatchAnomalies(
                    validator_pb2.WatchAnomaliesRequest(after_id=self.last_anomaly), wait_for_ready=True
                )
                async for response in call:
                    message = response.anomaly
                    delay = 0.2
                    self.last_anomaly = max(self.last_anomaly, message.id)
                    await self.on_anomaly(anomaly_json(message, defaults=False) | {"id": message.id})
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("anomaly stream failed; reconnecting", extra={"code": exc.code().name})
            except Exception:
                log.exception("anomaly alerts failed; reconnecting")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Run an AlertEngine for the app's lifetime (app.state.alerts; None when not configured)."""
    app.state.alerts = None
    if not settings.alerts_database_url:
        return
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as state:
            validator = getattr(application.state, "validator_stub", None)
            engine = AlertEngine(settings, application.state.snapshot, validator)
            await engine.start()
            application.state.alerts = engine
            try:
                yield state
            finally:
                application.state.alerts = None
                await engine.stop()

    app.router.lifespan_context = lifespan
