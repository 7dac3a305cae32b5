"""GET /dashboard: the operators' live page, and the JSON it polls.

* `/dashboard` — the page (HTML, CSS and JavaScript shipped in this package under `static/`;
  no CDN, no external library). It polls `/dashboard/api/overview` every two seconds and the
  public `/sources`, `/sources/freshness`, `/quality` and `/anomalies` routes less often, and
  draws its charts as hand-written SVG. With API keys configured, open it as
  `/dashboard?api_key=<key>`: the page sends the key as `X-API-Key` on every call it makes.
* `/dashboard/assets/<name>` — the page's own files.
* `/dashboard/api/overview` — traffic and latency per route (from the gateway's histogram),
  cache and snapshot state, WebSocket clients, and cost tracking: rate requests served, those
  answered without a call to the rates service, and what the same monthly volume would cost
  on ExchangeRate-API's and Open Exchange Rates' published price tiers (`PRICE_TIERS`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kurs_gateway import deps, views
from kurs_gateway.params import only
from kurs_gateway.problems import problem
from kurs_gateway.routes.metrics import GatewayMetrics

router = APIRouter(tags=["operations"])

ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# Routes whose answers a paid rates API would bill as one request each.
BILLABLE_PREFIXES = ("/rates/", "/v6/", "/frankfurter/", "/openexchangerates/", "/runa/", "/graphql")
RATES_SERVICE = "kurs.rates.v1.RatesService"
MONTH_SECONDS = 30 * 86400
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Tier:
    name: str
    requests_per_month: int | None  # None: no published cap (or by agreement)
    usd_per_month: Decimal
    price: str  # as published


@dataclass(frozen=True)
class Provider:
    name: str
    source: str
    checked: str
    reference: str  # where the figures were read
    note: str
    tiers: tuple[Tier, ...]


# Published monthly price tiers (USD), as read on the providers' pricing pages through the
# API Commons plan descriptions of api-evangelist (exchangerate-api: 2026-05-29, citing
# https://www.exchangerate-api.com/#pricing; openexchangerates: 2026-07-11, citing
# https://openexchangerates.org/signup). Annual billing is cheaper on both (two months free).
PRICE_TIERS = (
    Provider(
        "ExchangeRate-API",
        "https://www.exchangerate-api.com/#pricing",
        "2026-05-29",
        "github.com/api-evangelist/exchangerate-api plans/exchangerate-api-plans-pricing.yml",
        "Historical data from Pro up; Volume is billed yearly ($700/yr) with a quota by agreement.",
        (
            Tier("Free", 1_500, Decimal(0), "$0"),
            Tier("Pro", 30_000, Decimal(10), "$10/mo"),
            Tier("Business", 125_000, Decimal(30), "$30/mo"),
            Tier("Volume", None, (Decimal(700) / 12).quantize(CENT, ROUND_HALF_EVEN), "$700/yr"),
        ),
    ),
    Provider(
        "Open Exchange Rates",
        "https://openexchangerates.org/signup",
        "2026-07-11",
        "github.com/api-evangelist/openexchangerates plans/openexchangerates-plans-pricing.yml",
        "Base currencies other than USD from Developer, time series from Enterprise (one request "
        "per day returned), conversion from Unlimited.",
        (
            Tier("Free", 1_000, Decimal(0), "$0"),
            Tier("Developer", 10_000, Decimal(12), "$12/mo"),
            Tier("Enterprise", 100_000, Decimal(47), "$47/mo"),
            Tier("Unlimited", None, Decimal(97), "$97/mo"),
        ),
    ),
)

_assets: dict[str, bytes] = {}


def _asset(name: str) -> bytes:
    body = _assets.get(name)
    if body is None:
        body = _assets[name] = (resources.files("kurs_gateway") / "static" / name).read_bytes()
    return body


@router.get("/dashboard", dependencies=[Depends(only("api_key"))], include_in_schema=False)
async def dashboard() -> Response:
    """The operators' dashboard (a static page that polls the JSON routes)."""
    return Response(_asset("dashboard.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/dashboard/assets/{name}", dependencies=[Depends(only())], include_in_schema=False)
async def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return problem(404, f"no dashboard asset named {name!r}")
    return Response(_asset(name), media_type=media_type, headers=SECURITY_HEADERS)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) pairs, in seconds."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def route_table(metrics: GatewayMetrics) -> list[dict[str, Any]]:
    """Requests, errors and latency quantiles per (method, route), busiest first."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for family in metrics.http.collect():
        for sample in family.samples:
            key = (sample.labels["http_request_method"], sample.labels["http_route"])
            row = rows.setdefault(
                key, {"count": 0.0, "sum": 0.0, "errors": 0.0, "rejected": 0.0, "buckets": {}}
            )
            status = int(sample.labels["http_response_status_code"])
            if sample.name.endswith("_count"):
                row["count"] += sample.value
                if status >= 500:
                    row["errors"] += sample.value
                elif status >= 400:
                    row["rejected"] += sample.value
            elif sample.name.endswith("_sum"):
                row["sum"] += sample.value
            elif sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                row["buckets"][bound] = row["buckets"].get(bound, 0.0) + sample.value
    table: list[dict[str, Any]] = []
    for (method, route), row in rows.items():
        buckets = sorted(row["buckets"].items())
        ms = {f"p{int(q * 100)}_ms": _ms(quantile(q, buckets)) for q in (0.5, 0.9, 0.99)}
        table.append(
            {
                "method": method,
                "route": route,
                "requests": int(row["count"]),
                "errors": int(row["errors"]),
                "rejected": int(row["rejected"]),
                "mean_ms": _ms(row["sum"] / row["count"]) if row["count"] else None,
                **ms,
            }
        )
    table.sort(key=lambda r: (-r["requests"], r["route"]))
    return table


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def billable(row: dict[str, Any]) -> int:
    """Rate requests answered successfully (what a paid API would have billed)."""
    if not str(row["route"]).startswith(BILLABLE_PREFIXES):
        return 0
    return int(row["requests"]) - int(row["errors"]) - int(row["rejected"])


def cost(monthly_requests: int) -> list[dict[str, Any]]:
    """The cheapest published tier of each provider that covers `monthly_requests`."""
    out = []
    for provider in PRICE_TIERS:
        fit = next(
            (
                t
                for t in provider.tiers
                if t.requests_per_month is None or t.requests_per_month >= monthly_requests
            ),
            provider.tiers[-1],
        )
        out.append(
            {
                "name": provider.name,
                "source": provider.source,
                "checked": provider.checked,
                "reference": provider.reference,
                "note": provider.note,
                "plan": fit.name,
                "usd_per_month": str(fit.usd_per_month),
                "tiers": [
                    {
                        "name": t.name,
                        "requests_per_month": t.requests_per_month,
                        "usd_per_month": str(t.usd_per_month),
                        "price": t.price,
                    }
                    for t in provider.tiers
                ],
            }
        )
    return out


def upstream_rates_calls(metrics: GatewayMetrics) -> int:
    total = 0.0
    for family in metrics.service.client_duration.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels["rpc_service"] == RATES_SERVICE:
                total += sample.value
    return int(total)


@router.get("/dashboard/api/overview", dependencies=[Depends(only())], include_in_schema=False)
async def overview(request: Request) -> Response:
    """Everything the dashboard draws that the gateway itself knows (JSON)."""
    metrics = deps.metrics(request)
    cache = deps.cache(request)
    snapshot = deps.snapshot(request)
    feed = deps.feed_if_open(request)
    uptime = max(time.time() - metrics.started, 1.0)
    routes = route_table(metrics)
    served = sum(billable(r) for r in routes)
    hops = upstream_rates_calls(metrics)
    monthly = math.ceil(served * MONTH_SECONDS / max(uptime, 60.0))
    lookups = cache.hits + cache.misses
    websockets = sum(s.value for f in metrics.websockets.collect() for s in f.samples)
    ws_messages = sum(
        s.value for f in metrics.websocket_messages.collect() for s in f.samples if s.name.endswith("_total")
    )
    newest = max((e.observed_at for e in snapshot.entries.values()), default=None)
    body = {
        "uptime_seconds": round(uptime, 3),
        "routes": routes,
        "requests": int(sum(r["requests"] for r in routes)),
        "rate_requests": served,
        "upstream_rates_calls": hops,
        "upstream_calls_avoided": max(0, served - hops),
        "cache": {
            "hits": cache.hits,
            "misses": cache.misses,
            "stores": cache.stores,
            "entries": len(cache),
            "bytes": cache.size,
            "hit_ratio": round(cache.hits / lookups, 4) if lookups else None,
        },
        "snapshot": {
            "sequence": snapshot.sequence,
            "date": snapshot.day,
            "currencies": sorted(snapshot.entries),
            "newest_observed_at": newest,
            "stream_connected": bool(feed is not None and feed.connected),
        },
        "websocket": {"connections": int(websockets), "messages_sent": int(ws_messages)},
        "cost": {"monthly_requests": monthly, "providers": cost(monthly)},
    }
    return Response(views.dumps(body), media_type="application/json")
