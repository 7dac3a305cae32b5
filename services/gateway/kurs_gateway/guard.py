"""Optional API keys and per-client rate limits, applied in front of every route (fast path too).

Both are off by default. With `api_keys` set, every request except the health and docs paths
must carry one of the keys (`Authorization: Bearer <key>` or `X-API-Key: <key>`; a WebSocket may
also pass `api_key=<key>` in its query string, since browsers cannot set headers there) or gets a
401 problem. With `rate_limit_per_second` > 0 each client (its API key, else its IP address) has
a token bucket of `rate_limit_burst` requests refilled at that rate; an empty bucket answers 429
with Retry-After.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
MAX_CLIENTS = 100_000


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


def _problem(
    status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    titles = {401: "Unauthorized", 429: "Too many requests"}
    body = orjson.dumps({"type": "about:blank", "title": titles[status], "status": status, "detail": detail})
    return body, [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]


class Guard:
    def __init__(self, app: ASGIApp, api_keys: Iterable[str], rate: float, burst: int) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys if k]
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None

    def _key(self, scope: Scope) -> str | None:
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

    def _valid(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = key.encode()
        # Compare against every key so timing does not tell which prefix matched.
        return any([hmac.compare_digest(candidate, k) for k in self.keys])  # noqa: C419

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        valid = bool(self.keys) and self._valid(key)
        if self.keys and not valid:
            await self._deny(
                scope, send, 401, "a valid API key is required", [(b"www-authenticate", b"Bearer")]
            )
            return
        if self.buckets is not None:
            # Only a configured key earns its own bucket; anything else a client sends could be
            # rotated to dodge the limit, so those clients are limited by address.
            address = (scope.get("client") or ("unknown", 0))[0]
            wait = self.buckets.take(f"k:{key}" if valid else f"ip:{address}")
            if wait > 0:
                retry = str(max(1, math.ceil(wait))).encode()
                await self._deny(
                    scope, send, 429, "rate limit exceeded; retry later", [(b"retry-after", retry)]
                )
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _deny(
        scope: Scope, send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if scope["type"] == "websocket":
            # Deny the handshake with an HTTP response (ASGI websocket denial response).
            body, all_headers = _problem(status, detail, headers)
            if "websocket.http.response" in scope.get("extensions", {}):
                await send(
                    {"type": "websocket.http.response.start", "status": status, "headers": all_headers}
                )
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": detail})
            return
        body, all_headers = _problem(status, detail, headers)
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})
