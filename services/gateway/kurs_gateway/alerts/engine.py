"""The alert engine: loads the rules, evaluates them on every change of the live snapshot,
stores the events of webhook rules before delivering them, and fans every event out to the
WebSocket subscribers of its API key.

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

from fastapi import FastAPI

from kurs_common.fanout import Fanout
from kurs_gateway.alerts.delivery import Deliverer
from kurs_gateway.alerts.rules import Evaluator, Rule
from kurs_gateway.alerts.store import AlertStore
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]  # (api key, event)


class AlertEngine:
    def __init__(self, settings: GatewaySettings, snapshot: LiveSnapshot) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.store = AlertStore(settings.alerts_database_url)
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

    async def start(self) -> None:
        await self.store.open()
        for rule, secret in await self.store.rules():
            self.evaluator.add(rule)
            self.secrets[rule.id] = secret
        self._tasks = [
            asyncio.create_task(self._listen(), name="alerts-evaluate"),
            asyncio.create_task(self.deliverer.run(), name="alerts-deliver"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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

    async def on_change(self, codes: frozenset[str] | None, sequence: int) -> int:
        """Evaluate one change; store webhook events before delivery; returns events fired."""
        fired = self.evaluator.evaluate(self.snapshot.entries, codes, sequence, time.time())
        self.evaluations += 1
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


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Run an AlertEngine for the app's lifetime (app.state.alerts; None when not configured)."""
    app.state.alerts = None
    if not settings.alerts_database_url:
        return
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as state:
            engine = AlertEngine(settings, application.state.snapshot)
            await engine.start()
            application.state.alerts = engine
            try:
                yield state
            finally:
                application.state.alerts = None
                await engine.stop()

    app.router.lifespan_context = lifespan
