"""REST and WebSocket for alerts: rules per API key, their deliveries and dead letters.

* `POST /alerts/rules` — create a rule (JSON body, see alerts.rules); 201 with the rule and its
  webhook `secret` (shown once: it signs every delivery).
* `GET /alerts/rules`, `GET /alerts/rules/{id}`, `DELETE /alerts/rules/{id}` — the caller's rules.
* `GET /alerts/deliveries?state=pending|delivered|dead&limit=` — webhook deliveries; `dead` is
  the dead-letter list. `POST /alerts/deliveries/{event_id}/retry` puts a dead letter back.
* `WS /ws/alerts` — every event of the caller's rules as it fires (`{"type": "alert", ...}`).

The API key is the one the request authenticates with (`Authorization: Bearer`, `X-API-Key`,
or `api_key=` on the WebSocket); without keys configured, a request without one acts as
`anonymous`. 404 while alerts are not enabled (KURS_GATEWAY_ALERTS_DATABASE_URL unset).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from starlette.requests import HTTPConnection
from starlette.responses import Response

from kurs_common.errors import InvalidArgument, NotFound
from kurs_gateway import deps, views
from kurs_gateway.alerts.engine import AlertEngine
from kurs_gateway.alerts.rules import parse_rule
from kurs_gateway.guard import PRINCIPAL
from kurs_gateway.params import only
from kurs_gateway.settings import GatewaySettings

router = APIRouter(tags=["alerts"])

ANONYMOUS = "anonymous"
STATES = ("pending", "delivered", "dead")
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
Settings = Annotated[GatewaySettings, Depends(deps.settings)]


def api_key(conn: HTTPConnection) -> str:
    """Who owns the rules: the verified caller's id (a key id, never the key) when keys are on;
    otherwise a digest of whatever key the caller sent, so no key is stored in clear."""
    principal = conn.scope.get("state", {}).get(PRINCIPAL)
    if principal is not None:
        return str(principal.client)
    auth = conn.headers.get("authorization", "")
    sent = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    sent = sent or conn.headers.get("x-api-key") or conn.query_params.get("api_key") or ""
    return "sha256:" + hashlib.sha256(sent.encode()).hexdigest()[:32] if sent else ANONYMOUS


def engine(conn: HTTPConnection) -> AlertEngine:
    value = deps.alerts(conn)
    if value is None:
        raise NotFound("alerts", "alerts are not enabled on this gateway (KURS_GATEWAY_ALERTS_DATABASE_URL)")
    return value


Engine = Annotated[AlertEngine, Depends(engine)]
Key = Annotated[str, Depends(api_key)]


def _json(body: Any, status: int = 200) -> Response:
    return Response(views.dumps(body), status_code=status, media_type="application/json")


RULE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "description": "an alert rule"}}},
    }
}


@router.post("/alerts/rules", status_code=201, dependencies=[Depends(only())], openapi_extra=RULE_BODY)
async def create_rule(request: Request, alerts: Engine, key: Key, settings: Settings) -> Response:
    """Create a rule: `{"kind": "threshold", "base": "EUR", "symbol": "USD", "direction": "above",
    "threshold": "1.12", "webhook_url": "https://..."}` or `{"kind": "pct_move", ..., "percent":
    "0.5", "window_seconds": 3600}`; the answer carries the webhook `secret` once."""
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument("body", f"not valid JSON: {exc}") from exc
    served = alerts.snapshot.entries.keys() if alerts.snapshot.entries else None
    rule = parse_rule(payload, key, served, settings.alerts_webhook_hosts)
    if await alerts.store.count_rules(key) >= settings.alerts_max_rules_per_key:
        raise InvalidArgument("body", f"at most {settings.alerts_max_rules_per_key} rules per API key")
    secret = await alerts.add(rule)
    return _json({**rule.public(), "secret": secret}, 201)


@router.get("/alerts/rules", dependencies=[Depends(only())])
async def list_rules(alerts: Engine, key: Key) -> Response:
    """The caller's rules, oldest first (secrets are not shown again)."""
    return _json({"rules": [rule.public() for rule, _ in await alerts.store.rules(key)]})


@router.get("/alerts/rules/{rule_id}", dependencies=[Depends(only())])
async def get_rule(rule_id: str, alerts: Engine, key: Key) -> Response:
    rule = alerts.evaluator.rules.get(rule_id)
    if rule is None or rule.api_key != key:
        raise NotFound("rule_id", f"no rule {rule_id!r} for this API key")
    return _json(rule.public())


@router.delete("/alerts/rules/{rule_id}", status_code=204, dependencies=[Depends(only())])
async def delete_rule(rule_id: str, alerts: Engine, key: Key) -> Response:
    if not await alerts.remove(rule_id, key):
        raise NotFound("rule_id", f"no rule {rule_id!r} for this API key")
    return Response(status_code=204)


@router.get("/alerts/deliveries", dependencies=[Depends(only("state", "limit"))])
async def deliveries(
    alerts: Engine,
    key: Key,
    state: Annotated[str, Query(description="pending, delivered or dead (the dead-letter list)")] = "dead",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    if state not in STATES:
        raise InvalidArgument("state", f"must be one of {', '.join(STATES)}")
    return _json({"state": state, "deliveries": await alerts.store.deliveries(key, state, limit)})


@router.post("/alerts/deliveries/{event_id}/retry", dependencies=[Depends(only())])
async def retry(event_id: str, alerts: Engine, key: Key) -> Response:
    """Put a dead letter back on the queue (attempts start again)."""
    if not await alerts.store.requeue(event_id, key):
        raise NotFound("event_id", f"no dead letter {event_id!r} for this API key")
    alerts.deliverer.wake()
    return _json({"event_id": event_id, "state": "pending"})


@router.websocket("/ws/alerts")
async def alerts_stream(ws: WebSocket) -> None:
    """Every event of the caller's rules as it fires; heartbeats when idle."""
    await ws.accept()
    for name in ws.query_params:
        if name != "api_key":
            await ws.send_text(
                orjson.dumps({"type": "error", "status": 400, "detail": f"unknown parameter {name}"}).decode()
            )
            await ws.close(POLICY_VIOLATION)
            return
    alerts = deps.alerts(ws)
    if alerts is None:
        await ws.close(TRY_AGAIN_LATER)
        return
    key = api_key(ws)
    heartbeat = deps.settings(ws).heartbeat_seconds
    with alerts.fanout.subscribe() as sub, contextlib.suppress(WebSocketDisconnect):
        while True:
            try:
                owner, event = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat)
            except TimeoutError:
                await ws.send_text('{"type":"heartbeat"}')
                continue
            if owner == key:
                await ws.send_text(orjson.dumps({"type": "alert", **event}).decode())
