"""A/B shadowing of the ExchangeRate-API v6 routes, for a gradual switch to Kurs.

With `KURS_GATEWAY_SHADOW_URL` set (the other API's base URL, e.g. `https://v6.example.com`),
every GET under `/v6/` (except `/quota`) is answered by one side while the other is asked too:

* `KURS_GATEWAY_SHADOW_SERVE=kurs` (default): Kurs answers at once; the same path (with the key
  swapped for `KURS_GATEWAY_SHADOW_KEY`) is fetched from the upstream in the background.
* `KURS_GATEWAY_SHADOW_SERVE=upstream`: the upstream's answer is served when it comes within
  `KURS_GATEWAY_SHADOW_TIMEOUT_SECONDS`; otherwise (or when it cannot be reached) Kurs's answer
  is served. Kurs's own answer is computed in the background for the comparison.

At most `KURS_GATEWAY_SHADOW_MAX_PENDING` comparisons run at once; more are skipped and counted.
A comparison looks at `result`, `error-type`, `base_code`/`target_code`, `conversion_rate`,
`conversion_result` and every currency in `conversion_rates`/`rates`/`conversion_amounts` that
both sides have: a figure whose relative difference exceeds `KURS_GATEWAY_SHADOW_TOLERANCE` is a
divergence. Codes only one side has are counted apart (Kurs serves fewer currencies). Counts
and the most recent divergences are logged and exposed at `GET /shadow`; they are per process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kurs_gateway.usage import v6_key

log = logging.getLogger(__name__)

router = APIRouter(tags=["shadow"])

RATE_MAPS = ("conversion_rates", "rates", "conversion_amounts")
FIGURES = ("conversion_rate", "conversion_result", "requested_amount")
LABELS = ("result", "error-type", "base_code", "target_code")
RECENT = 50


@dataclass(frozen=True, slots=True)
class Divergence:
    path: str
    field: str
    kurs: str | None
    upstream: str | None
    relative: str | None


@dataclass
class ShadowStats:
    compared: int = 0
    diverged: int = 0  # answers with at least one divergent field
    divergent_fields: int = 0
    missing_codes: int = 0
    upstream_errors: int = 0
    skipped: int = 0
    recent: deque[Divergence] = field(default_factory=lambda: deque(maxlen=RECENT))


@dataclass(frozen=True, slots=True)
class Captured:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _relative(kurs: Decimal, upstream: Decimal) -> Decimal:
    if kurs == upstream:
        return Decimal(0)
    scale = abs(upstream) if upstream else abs(kurs)
    return abs(kurs - upstream) / scale


def compare(
    path: str, kurs: Mapping[str, Any] | None, upstream: Mapping[str, Any] | None, tolerance: Decimal
) -> tuple[list[Divergence], int]:
    """Divergent fields between two v6 answers, and how many codes only one side has."""
    if kurs is None or upstream is None:
        return [Divergence(path, "body", None, None, None)], 0
    out: list[Divergence] = []
    for name in LABELS:
        a, b = kurs.get(name), upstream.get(name)
        if a != b:
            out.append(
                Divergence(path, name, None if a is None else str(a), None if b is None else str(b), None)
            )

    def figure(name: str, a: Any, b: Any) -> None:
        try:
            ka, ub = Decimal(str(a)), Decimal(str(b))
        except InvalidOperation:
            out.append(Divergence(path, name, str(a), str(b), None))
            return
        relative = _relative(ka, ub)
        if relative > tolerance:
            out.append(Divergence(path, name, str(a), str(b), f"{relative:.6g}"))

    for name in FIGURES:
        if name in kurs and name in upstream:
            figure(name, kurs[name], upstream[name])
    missing = 0
    for name in RATE_MAPS:
        a_map, b_map = kurs.get(name), upstream.get(name)
        if not isinstance(a_map, dict) or not isinstance(b_map, dict):
            continue
        missing += len(a_map.keys() ^ b_map.keys())
        for code in sorted(a_map.keys() & b_map.keys()):
            figure(f"{name}.{code}", a_map[code], b_map[code])
    return out, missing


async def _capture(app: ASGIApp, scope: Scope) -> Captured:
    """Run the Kurs side of a GET to completion in memory."""
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Captured(status, headers, b"".join(chunks))


class Shadow:
    """ASGI middleware that shadows the v6 routes against an upstream (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        upstream_url: str,
        upstream_key: str,
        serve: str,
        tolerance: Decimal,
        timeout: float,
        max_pending: int,
    ) -> None:
        self.app = app
        self.upstream_url = upstream_url.rstrip("/")
        self.upstream_key = upstream_key
        self.serve = serve
        self.tolerance = tolerance
        self.timeout = timeout
        self.max_pending = max_pending
        self.stats = ShadowStats()
        self._tasks: set[asyncio.Task[None]] = set()

    def _upstream_target(self, scope: Scope) -> str:
        path: str = scope["path"]
        if v6_key(path) is not None and self.upstream_key:
            parts = path.split("/")
            parts[2] = self.upstream_key
            path = "/".join(parts)
        query = scope["query_string"].decode("latin-1")
        return f"{self.upstream_url}{path}" + (f"?{query}" if query else "")

    async def _fetch(self, url: str) -> Captured:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            reply = await client.get(url)
        headers = [(b"content-type", reply.headers.get("content-type", "application/json").encode())]
        return Captured(reply.status_code, headers, reply.content)

    def _spawn(self, work: Any) -> bool:
        if len(self._tasks) >= self.max_pending:
            self.stats.skipped += 1
            work.close()
            return False
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _record(self, path: str, kurs: Captured, upstream: Captured) -> None:
        divergences, missing = compare(path, _parse(kurs.body), _parse(upstream.body), self.tolerance)
        self.stats.compared += 1
        self.stats.missing_codes += missing
        if divergences:
            self.stats.diverged += 1
            self.stats.divergent_fields += len(divergences)
            self.stats.recent.extend(divergences)
            log.warning(
                "shadow divergence",
                extra={
                    "path": path,
                    "fields": [d.field for d in divergences][:20],
                    "count": len(divergences),
                },
            )

    async def _compare_with_upstream(self, path: str, url: str, kurs: Captured) -> None:
        try:
            upstream = await self._fetch(url)
        except httpx.HTTPError as exc:
            self.stats.upstream_errors += 1
            log.warning("shadow upstream failed", extra={"path": path, "error": type(exc).__name__})
            return
        self._record(path, kurs, upstream)

    async def _compare_with_kurs(self, scope: Scope, upstream: Captured) -> None:
        kurs = await _capture(self.app, scope)
        self._record(scope["path"], kurs, upstream)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not path.startswith("/v6/")
            or path.endswith("/quota")
        ):
            await self.app(scope, receive, send)
            return
        url = self._upstream_target(scope)
        if self.serve == "upstream":
            try:
                upstream = await self._fetch(url)
            except httpx.HTTPError as exc:
                upstream = Captured(599, [], type(exc).__name__.encode())
            if upstream.status >= 500:
                self.stats.upstream_errors += 1
                log.warning("shadow upstream failed; serving Kurs", extra={"status": upstream.status})
                await self.app(scope, receive, send)
                return
            await _replay(send, upstream)
            self._spawn(self._compare_with_kurs(dict(scope), upstream))
            return
        kurs = await _capture(self.app, scope)
        await _replay(send, kurs)
        self._spawn(self._compare_with_upstream(path, url, kurs))


async def _replay(send: Send, answer: Captured) -> None:
    headers = [(n, v) for n, v in answer.headers if n.lower() != b"content-length"]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def report(shadow: Shadow | None) -> dict[str, Any]:
    if shadow is None:
        return {"enabled": False}
    s = shadow.stats
    return {
        "enabled": True,
        "serve": shadow.serve,
        "upstream": shadow.upstream_url,
        "tolerance": str(shadow.tolerance),
        "compared": s.compared,
        "diverged": s.diverged,
        "divergent_fields": s.divergent_fields,
        "missing_codes": s.missing_codes,
        "upstream_errors": s.upstream_errors,
        "skipped": s.skipped,
        "pending": len(shadow._tasks),
        "recent": [
            {"path": d.path, "field": d.field, "kurs": d.kurs, "upstream": d.upstream, "relative": d.relative}
            for d in s.recent
        ],
    }


@router.get("/shadow")
async def shadow_report(request: Request) -> Response:
    """Counts of shadow comparisons and divergences in this gateway process (`enabled: false` when off)."""
    shadow: Shadow | None = getattr(request.app.state, "shadow", None)
    return Response(json.dumps(report(shadow)).encode(), media_type="application/json")
