"""Request counts per API key for ExchangeRate-API v6 `/quota`, and the v6 key front.

Counts live in the gateway process: two gateway replicas each count their own requests, and a
restart starts from zero. That is documented as per-process until shared quotas exist. A
period starts on `refresh_day` of each month at 00:00 UTC (a day past a short month's end
means its last day); every count drops to zero when a new period begins.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hmac
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_KEYS = 100_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def period_start(moment: dt.datetime, refresh_day: int) -> dt.datetime:
    """The start of the quota period holding `moment`."""

    def start_in(year: int, month: int) -> dt.datetime:
        day = min(refresh_day, calendar.monthrange(year, month)[1])
        return dt.datetime(year, month, day, tzinfo=dt.UTC)

    this_month = start_in(moment.year, moment.month)
    if moment >= this_month:
        return this_month
    year, month = (moment.year, moment.month - 1) if moment.month > 1 else (moment.year - 1, 12)
    return start_in(year, month)


@dataclass(frozen=True, slots=True)
class Quota:
    plan_quota: int
    requests_remaining: int
    refresh_day_of_month: int


class UsageCounter:
    """Thread-safe counts of requests per key within the current quota period."""

    def __init__(
        self, plan_quota: int, refresh_day: int = 1, clock: Callable[[], dt.datetime] = _now
    ) -> None:
        if not 1 <= refresh_day <= 31:
            raise ValueError("refresh_day must be 1..31")
        self.plan_quota = plan_quota
        self.refresh_day = refresh_day
        self._clock = clock
        self._lock = threading.Lock()
        self._period = period_start(clock(), refresh_day)
        self._counts: dict[str, int] = {}

    def _roll(self) -> None:
        current = period_start(self._clock(), self.refresh_day)
        if current != self._period:
            self._period = current
            self._counts.clear()

    def spend(self, key: str) -> bool:
        """Count one request for `key`; False (and not counted) once the plan quota is used up."""
        with self._lock:
            self._roll()
            used = self._counts.get(key, 0)
            if used >= self.plan_quota:
                return False
            if key not in self._counts and len(self._counts) >= MAX_KEYS:
                self._counts.pop(next(iter(self._counts)))
            self._counts[key] = used + 1
            return True

    def used(self, key: str) -> int:
        with self._lock:
            self._roll()
            return self._counts.get(key, 0)

    def quota(self, key: str) -> Quota:
        used = self.used(key)
        return Quota(self.plan_quota, max(0, self.plan_quota - used), self.refresh_day)


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

    With the gateway's API keys on, the path key must be one of them (else `invalid-key`) and is
    handed on as `X-API-Key`, so the key guard and its rate limits treat it like a header key;
    with keys off any key is accepted and counted. Keys in `inactive` answer `inactive-account`.
    `/quota` itself is not counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_keys: Iterable[str],
        inactive: Iterable[str],
        usage: UsageCounter,
        documentation: str,
        terms: str,
    ) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys if k]
        self.inactive = frozenset(inactive)
        self.usage = usage
        self.documentation = documentation
        self.terms = terms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = v6_key(scope["path"]) if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if key in self.inactive:
            await self._refuse(send, "inactive-account")
            return
        if self.keys:
            candidate = key.encode()
            if not any([hmac.compare_digest(candidate, k) for k in self.keys]):  # noqa: C419
                await self._refuse(send, "invalid-key")
                return
        if not scope["path"].endswith("/quota") and not self.usage.spend(key):
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
