"""Usage figures for ExchangeRate-API v6 `/quota`, and the v6 key front.

Requests are counted by the meter (keys/meter.py): in this process without Redis, shared by
every gateway with it. A quota period starts on `refresh_day` of each month at 00:00 UTC (a day
past a short month's end means its last day); counts drop to zero when a new period begins.
With managed keys (KURS_GATEWAY_AUTH=keys) a v6 path key is one of them, and the guard checks
and counts it like any other key; otherwise this front checks the path key against the static
keys (if any) and counts it against `v6_plan_quota`, under a digest of the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from kurs_gateway.keys.meter import Limits, Meter, period_start

__all__ = ["V6_STATUS", "Quota", "V6Front", "period_start", "v6_client", "v6_error_body", "v6_key"]


@dataclass(frozen=True, slots=True)
class Quota:
    plan_quota: int
    requests_remaining: int
    refresh_day_of_month: int


def v6_client(key: str) -> str:
    """What a v6 path key's requests are counted under when keys are not managed (never the key)."""
    return "v6:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def quota_of(plan: int, month_used: int, refresh_day: int, day_left: int | None = None) -> Quota:
    remaining = max(0, plan - month_used)
    if day_left is not None:
        remaining = min(remaining, max(0, day_left))
    return Quota(plan, remaining, refresh_day)


# -- The v6 front: the key in the path, quotas, and v6-shaped refusals ------------------------

V6_STATUS = {
    "unsupported-code": 404,
    "malformed-request": 400,
    "invalid-key": 401,
    "inactive-account": 403,
    "quota-reached": 403,
    "no-data-available": 404,
}


def v6_error_body(error_type: str, documentation: str, terms: str) -> bytes:
    """ExchangeRate-API's error envelope (its errors spell `terms-of-use` with hyphens)."""
    return orjson.dumps(
        {"result": "error", "documentation": documentation, "terms-of-use": terms, "error-type": error_type}
    )


def v6_key(path: str) -> str | None:
    """The key in `/v6/{key}/...`; None for the open `/v6/latest/{base}` and other paths."""
    parts = path.split("/")
    if len(parts) < 4 or parts[0] or parts[1] != "v6" or not parts[2]:
        return None
    if parts[2] == "latest" and len(parts) == 4:
        return None
    return unquote(parts[2])


class V6Front:
    """ASGI front for `/v6/{key}/...`: checks the path's key and counts it against the quota.

    `managed` (KURS_GATEWAY_AUTH=keys): the path key is handed on as `X-API-Key`, and the guard
    checks it, its scopes and its limits (a key without a monthly quota of its own gets
    `v6_plan_quota` on these routes). Otherwise, with static API keys the path key must be one of
    them (else `invalid-key`), with keys off any key is accepted; either way it is counted here
    against `plan_quota` and handed on. Keys in `inactive` answer `inactive-account`. `/quota`
    itself is not counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_keys: Iterable[str],
        inactive: Iterable[str],
        meter: Meter,
        plan_quota: int,
        documentation: str,
        terms: str,
        *,
        managed: bool = False,
    ) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys if k]
        self.inactive = frozenset(inactive)
        self.meter = meter
        self.limits = Limits(per_month=plan_quota)
        self.documentation = documentation
        self.terms = terms
        self.managed = managed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = v6_key(scope["path"]) if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if key in self.inactive:
            await self._refuse(send, "inactive-account")
            return
        if not self.managed:
            if self.keys:
                candidate = key.encode()
                if not any([hmac.compare_digest(candidate, k) for k in self.keys]):  # noqa: C419
                    await self._refuse(send, "invalid-key")
                    return
            if not scope["path"].endswith("/quota"):
                client = v6_client(key)
                verdict = self.meter.try_admit(client, self.limits, "read")
                if verdict is None:
                    verdict = await self.meter.admit(client, self.limits, "read")
                if not verdict.allowed:
                    await self._refuse(send, "quota-reached")
                    return
        headers = [(n, v) for n, v in scope["headers"] if n not in (b"x-api-key", b"authorization")]
        headers.append((b"x-api-key", key.encode("latin-1", "replace")))
        await self.app({**scope, "headers": headers}, receive, send)

    async def _refuse(self, send: Send, error_type: str) -> None:
        body = v6_error_body(error_type, self.documentation, self.terms)
        await send(
            {
                "type": "http.response.start",
                "status": V6_STATUS[error_type],
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
