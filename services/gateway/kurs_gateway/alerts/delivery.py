"""Webhook delivery of stored alert events: signed, retried with backoff and jitter, dead-lettered.

Every POST carries the event's JSON body unchanged across attempts and:

* `X-Kurs-Signature: sha256=<hex HMAC-SHA256 of the body with the rule's secret>`;
* `Idempotency-Key: <event id>` (also `X-Kurs-Event`): a retry is the same event, so a receiver
  that keeps the keys it has seen never acts twice (at-least-once delivery, exactly-once effect);
* `X-Kurs-Attempt: <n>`.

A 2xx answer marks the event delivered. Anything else (an error status, a refused connection,
no answer within `timeout`) schedules attempt n+1 after min(max_delay, base x 2^(n-1)) seconds,
jittered uniformly down to half of that; after `max_attempts` the event goes to the dead-letter
list (GET /alerts/deliveries?state=dead), from which it can be put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time

import httpx

from kurs_gateway.alerts.store import AlertStore, Delivery

log = logging.getLogger(__name__)

BATCH = 64
CONCURRENCY = 16


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before attempt `attempt + 1` (attempt >= 1): exponential, capped, jittered."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return rng.uniform(delay / 2, delay)


class Deliverer:
    def __init__(
        self,
        store: AlertStore,
        *,
        timeout: float,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        self._wake = asyncio.Event()
        self._gate = asyncio.Semaphore(CONCURRENCY)

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self) -> None:
        """Deliver what is due, then sleep until the next retry is due or new events arrive."""
        while True:
            try:
                due = await self.store.due(time.time(), BATCH)
                if due:
                    await asyncio.gather(*(self._attempt(d) for d in due))
                    continue
                upcoming = await self.store.next_due()
                wait = 60.0 if upcoming is None else max(0.0, upcoming - time.time())
            except Exception:  # never let delivery die silently: log and go on
                log.exception("alert delivery loop failed; retrying")
                wait = 1.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _attempt(self, delivery: Delivery) -> None:
        attempt = delivery.attempts + 1
        headers = {
            "content-type": "application/json",
            "x-kurs-signature": signature(delivery.secret, delivery.payload),
            "idempotency-key": delivery.event_id,
            "x-kurs-event": delivery.event_id,
            "x-kurs-attempt": str(attempt),
        }
        async with self._gate:
            try:
                reply = await self.client.post(delivery.url, content=delivery.payload, headers=headers)
                error = "" if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
            except httpx.TimeoutException:
                error = "timed out"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        if not error:
            await self.store.delivered(delivery.event_id, attempt)
            return
        retry_at = None
        if attempt < self.max_attempts:
            retry_at = time.time() + backoff(attempt, self.base_delay, self.max_delay, self.rng)
        log.warning(
            "alert webhook failed",
            extra={"event": delivery.event_id, "attempt": attempt, "error": error, "dead": retry_at is None},
        )
        await self.store.failed(delivery.event_id, attempt, error, retry_at)
