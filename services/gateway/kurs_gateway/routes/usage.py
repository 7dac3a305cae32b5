"""GET /usage: the calling key's requests today and this month by route class, quota left, resets.

Counts come from the meter (keys/meter.py): shared by every gateway with Redis, this process's
without. This gateway's own requests are always included; another gateway's reach the figures
within its sync interval. `/usage` itself is not counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kurs_gateway import deps
from kurs_gateway.guard import PRINCIPAL
from kurs_gateway.keys.meter import Meter
from kurs_gateway.keys.model import ROUTE_CLASSES
from kurs_gateway.keys.registry import Principal
from kurs_gateway.params import only
from kurs_gateway.problems import problem
from kurs_gateway.views import dumps

router = APIRouter(tags=["keys"])

USAGE_EXAMPLE: dict[str, Any] = {
    "key": {"id": "kurs_3f9a1c2b7d10", "name": "pricing service", "scopes": ["read", "stream"]},
    "day": "2026-10-30",
    "period_start": "2026-10-01",
    "requests_today": {"total": 1200, "read": 1190, "stream": 10, "bulk": 0, "alerts": 0, "admin": 0},
    "requests_this_month": {"total": 31000, "read": 30900, "stream": 100, "bulk": 0, "alerts": 0, "admin": 0},
    "quota": {"per_day": 5000, "remaining_today": 3800, "per_month": None, "remaining_this_month": None},
    "rate_limit": {"per_second": 10.0, "burst": 20},
    "resets_at": {"day": "2026-10-31T00:00:00Z", "month": "2026-11-01T00:00:00Z"},
}


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _by_class(counts: dict[str, int]) -> dict[str, int]:
    return {"total": counts.get("_total", 0), **{c: counts.get(c, 0) for c in ROUTE_CLASSES}}


async def usage_body(meter: Meter, principal: Principal) -> dict[str, Any]:
    today, month = await meter.usage(principal.client)
    day, period, day_end, month_end = meter.today()
    limits = principal.limits

    def left(quota: int | None, used: int) -> int | None:
        return None if quota is None else max(0, quota - used)

    return {
        "key": {"id": principal.key_id, "name": principal.name, "scopes": sorted(principal.scopes)},
        "day": day,
        "period_start": period,
        "requests_today": _by_class(today),
        "requests_this_month": _by_class(month),
        "quota": {
            "per_day": limits.per_day,
            "remaining_today": left(limits.per_day, today.get("_total", 0)),
            "per_month": limits.per_month,
            "remaining_this_month": left(limits.per_month, month.get("_total", 0)),
        },
        "rate_limit": {"per_second": limits.rate, "burst": limits.burst} if limits.rate > 0 else None,
        "resets_at": {"day": _iso(day_end), "month": _iso(month_end)},
    }


def caller(request: Request) -> Principal | None:
    found = request.scope.get("state", {}).get(PRINCIPAL)
    return found if isinstance(found, Principal) else None


@router.get(
    "/usage",
    dependencies=[Depends(only())],
    responses={200: {"content": {"application/json": {"example": USAGE_EXAMPLE}}}},
)
async def usage(request: Request) -> Response:
    """The calling key's usage: requests today and in the current monthly period by route class
    (read, stream, bulk, alerts, admin), quota left and when each count resets (UTC)."""
    principal = caller(request)
    if principal is None:
        return problem(
            401,
            "usage is reported per API key; send one (this gateway requires none unless "
            "KURS_GATEWAY_AUTH=keys or KURS_GATEWAY_API_KEYS is set)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(
        dumps(await usage_body(deps.access(request).meter, principal)), media_type="application/json"
    )
