"""API keys, scopes, rate limits and quotas, applied in front of every route (fast path too).

Off by default. With keys required (KURS_GATEWAY_AUTH=keys, or a static KURS_GATEWAY_API_KEYS
list), every request except the health and docs paths must carry a key (`Authorization: Bearer
<key>` or `X-API-Key: <key>`; a WebSocket may also pass `api_key=<key>` in its query string, and
GraphQL over WebSocket in its `connection_init` payload) or gets a 401 problem; a key without the
scope its route needs (keys/model.py `route_class`) gets 403. Each key then spends from its token
bucket and its daily/monthly quotas, shared by every gateway through the meter (keys/meter.py);
an empty bucket or a used-up quota answers 429 with Retry-After. Wrong keys are throttled per
client address before the slow hash check. Without keys, `rate_limit_per_second` > 0 limits each
client address with a token bucket of its own in this process.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from kurs_gateway.keys.meter import Meter, Verdict
from kurs_gateway.keys.model import route_class
from kurs_gateway.keys.registry import UNKNOWN, KeyRegistry, Principal
from kurs_gateway.usage import V6_STATUS, v6_error_body, v6_key

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
UNCOUNTED = frozenset({"/usage"})  # any valid key may ask; not counted against its quota
MAX_CLIENTS = 100_000
PRINCIPAL = "kurs_principal"  # the ASGI scope["state"] entry routes read the caller from


class TokenBuckets:
    """Token buckets per client, the least recently seen forgotten beyond MAX_CLIENTS."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        self._buckets.move_to_end(client)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait

    def wait(self, client: str) -> float:
        """Seconds until `client` has a token, without spending one."""
        tokens, last = self._buckets.get(client, (self.burst, self._clock()))
        tokens = min(self.burst, tokens + (self._clock() - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate


def _problem(
    status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    titles = {401: "Unauthorized", 403: "Forbidden", 429: "Too many requests"}
    body = orjson.dumps({"type": "about:blank", "title": titles[status], "status": status, "detail": detail})
    return body, [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]


def presented_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1"))
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1").strip())
    if scope["type"] == "websocket":
        for name, value in parse_qsl(scope["query_string"].decode("latin-1")):
            if name == "api_key":
                return str(value)
    return None


REFUSALS = {
    "rate": "rate limit exceeded; retry later",
    "day": "daily quota used up; it resets at 00:00 UTC",
    "month": "monthly quota used up; it resets at the start of the next period",
}


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        registry: KeyRegistry | None,
        meter: Meter,
        *,
        ip_rate: float = 0.0,
        ip_burst: int = 100,
        failure_rate: float = 1.0,
        failure_burst: int = 20,
        v6_plan_quota: int | None = None,
        v6_links: tuple[str, str] = ("/docs", "/docs"),
    ) -> None:
        self.app = app
        self.registry = registry
        self.meter = meter
        self.ip_buckets = TokenBuckets(ip_rate, ip_burst) if ip_rate > 0 else None
        self.failures = TokenBuckets(failure_rate, failure_burst)
        self.v6_plan_quota = v6_plan_quota
        self.v6_links = v6_links
        self._classes: dict[str, str] = {}

    def _class(self, path: str) -> str:
        klass = self._classes.get(path)
        if klass is None:
            klass = route_class(path)
            if len(self._classes) > 4096:
                self._classes.clear()
            self._classes[path] = klass
        return klass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.registry is None:
            await self._by_address(scope, receive, send)
            return
        path = scope["path"]
        key = presented_key(scope)
        if key is None:
            if kind == "websocket" and path == "/graphql":
                # graphql-transport-ws clients send the key in connection_init; the route checks it.
                await self.app(scope, receive, send)
                return
            await self._deny(
                scope, send, 401, "a valid API key is required", [(b"www-authenticate", b"Bearer")]
            )
            return
        found = self.registry.check(key)
        now = time.time()
        if not isinstance(found, Principal) or found.revoked or found.expires <= now:
            # Unknown, known to be wrong, revoked or expired: failures are throttled alike.
            address = (scope.get("client") or ("unknown", 0))[0]
            wait = self.failures.wait(address)
            if wait > 0:
                await self._deny(scope, send, 429, "too many failed keys; retry later", _retry(wait))
                return
            if found is UNKNOWN:
                found = await self.registry.verify(key)
        if not isinstance(found, Principal) or found.revoked or found.expires <= now:
            self.failures.take((scope.get("client") or ("unknown", 0))[0])
            detail = "a valid API key is required"
            if isinstance(found, Principal):
                detail = "this API key has been revoked" if found.revoked else "this API key has expired"
            await self._deny(scope, send, 401, detail, [(b"www-authenticate", b"Bearer")])
            return
        klass = self._class(path)
        if kind == "websocket" and klass == "read":
            klass = "stream"  # GraphQL over WebSocket
        counted: str | None = klass
        limits = found.limits
        if path in UNCOUNTED or (path.startswith("/v6/") and path.endswith("/quota")):
            counted = None
        elif klass not in found.scopes:
            await self._deny(scope, send, 403, f"this API key lacks the {klass!r} scope", ())
            return
        if self.v6_plan_quota is not None and limits.per_month is None and path.startswith("/v6/"):
            limits = replace(limits, per_month=self.v6_plan_quota)
        verdict = self.meter.try_admit(found.client, limits, counted)
        if verdict is None:
            verdict = await self.meter.admit(found.client, limits, counted)
        if not verdict.allowed:
            await self._refuse(scope, send, verdict)
            return
        scope.setdefault("state", {})[PRINCIPAL] = found
        await self.app(scope, receive, send)

    async def _by_address(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ip_buckets is not None:
            address = (scope.get("client") or ("unknown", 0))[0]
            wait = self.ip_buckets.take(f"ip:{address}")
            if wait > 0:
                await self._deny(scope, send, 429, REFUSALS["rate"], _retry(wait))
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, verdict: Verdict) -> None:
        if verdict.reason in ("day", "month") and v6_key(scope["path"]) is not None:
            body = v6_error_body("quota-reached", *self.v6_links)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send(
                {"type": "http.response.start", "status": V6_STATUS["quota-reached"], "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self._deny(scope, send, 429, REFUSALS[verdict.reason], _retry(verdict.retry_after))

    async def _deny(
        self, scope: Scope, send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        body, all_headers = _problem(status, detail, headers)
        if status == 401 and scope["type"] == "http" and v6_key(scope["path"]) is not None:
            body = v6_error_body("invalid-key", *self.v6_links)
            all_headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        if scope["type"] == "websocket":
            # Deny the handshake with an HTTP response (ASGI websocket denial response).
            if "websocket.http.response" in scope.get("extensions", {}):
                await send(
                    {"type": "websocket.http.response.start", "status": status, "headers": all_headers}
                )
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": detail})
            return
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})


def _retry(wait: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", str(max(1, math.ceil(wait))).encode())]
