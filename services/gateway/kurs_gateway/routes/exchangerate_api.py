"""ExchangeRate-API v6 compatibility at its own paths: a client switches by changing host and key.

Keyed routes (`/v6/{key}/latest/{base}`, `/pair/{from}/{to}[/{amount}]`,
`/history/{base}/{year}/{month}/{day}[/{amount}]`, `/codes`, `/quota`) and the open
`/v6/latest/{base}` answer ExchangeRate-API's shapes field for field. The key is checked and
counted by `usage.V6Front` (or, with managed keys, the guard) before a request gets here;
`/quota` reports the meter's figures (shared through Redis when configured).

Rates are JSON numbers written with Kurs's exact decimal digits (never through a float). The
base itself is in `conversion_rates` as 1. `time_last_update_*` is the newest observation time
of the figures served; `time_next_update_*` is 24 hours later (Kurs's sources publish on their
own schedules, so this is an estimate, as a client only uses it to time its next call). A
historical date answers the fixing of that date or the last business day before it, with the
requested year, month and day echoed. Errors are ExchangeRate-API's
`{"result": "error", "error-type": ...}` with its HTTP statuses (see `usage.V6_STATUS`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from kurs.rates.v1 import rates_pb2
from kurs_common import money, validation
from kurs_common.currencies import name_of
from kurs_common.errors import QueryError
from kurs_common.rate import UNOBSERVED, Rate, observed
from kurs_common.timeutil import today_utc
from kurs_gateway import deps, views
from kurs_gateway.deps import Cache, Settings, Snapshot, Stub
from kurs_gateway.fastpath import history_response, live_response
from kurs_gateway.routes.usage import caller
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import LiveSnapshot
from kurs_gateway.usage import V6_STATUS, quota_of, v6_client, v6_error_body

router = APIRouter(tags=["exchangerate-api"])

OPEN_DOCUMENTATION_SUFFIX = "/free"
DAY = dt.timedelta(days=1)

V6_LATEST_EXAMPLE: dict[str, Any] = {
    "result": "success",
    "documentation": "/docs",
    "terms_of_use": "/docs",
    "time_last_update_unix": 1761836400,
    "time_last_update_utc": "Thu, 30 Oct 2025 15:00:00 +0000",
    "time_next_update_unix": 1761922800,
    "time_next_update_utc": "Fri, 31 Oct 2025 15:00:00 +0000",
    "base_code": "USD",
    "conversion_rates": {"USD": 1, "EUR": 0.8950948801, "GBP": 0.746330111},
}


class V6Error(Exception):
    def __init__(self, error_type: str) -> None:
        super().__init__(error_type)
        self.error_type = error_type


def _links(settings: GatewaySettings) -> dict[str, str]:
    return {"documentation": settings.v6_documentation_url, "terms_of_use": settings.v6_terms_url}


def _error(settings: GatewaySettings, error_type: str) -> Response:
    body = v6_error_body(error_type, settings.v6_documentation_url, settings.v6_terms_url)
    return Response(body, status_code=V6_STATUS[error_type], media_type="application/json")


def _number(text: str) -> orjson.Fragment:
    return orjson.Fragment(text.encode())


def _times(moment: dt.datetime | None) -> dict[str, Any]:
    last = moment or dt.datetime.now(dt.UTC)
    last = last.astimezone(dt.UTC).replace(microsecond=0)
    following = last + DAY
    return {
        "time_last_update_unix": int(last.timestamp()),
        "time_last_update_utc": email.utils.format_datetime(last),
        "time_next_update_unix": int(following.timestamp()),
        "time_next_update_utc": email.utils.format_datetime(following),
    }


def _code(text: str, served: set[str] | None = None) -> str:
    try:
        return validation.currency("code", text, served)
    except QueryError as exc:
        raise V6Error("unsupported-code") from exc


def _amount(text: str) -> Any:
    try:
        return money.parse_amount(text)
    except money.DecimalFormatError as exc:
        raise V6Error("malformed-request") from exc


def _latest(snapshot: LiveSnapshot, base: str) -> tuple[str, tuple[Rate, ...]]:
    if not snapshot.entries:
        raise V6Error("no-data-available")
    code = _code(base, {*snapshot.entries, "EUR"})
    _, _, rates = views.latest_rates(snapshot.entries, code, [])
    return code, rates


def _with_base(code: str, rates: Mapping[str, str]) -> dict[str, orjson.Fragment]:
    out = {code: _number("1")}
    out.update({c: _number(v) for c, v in sorted(rates.items()) if c != code})
    return out


def _newest(rates: tuple[Rate, ...]) -> dt.datetime | None:
    return observed(max((r.observed_at for r in rates), default=UNOBSERVED))


def _latest_answer(
    request: Request,
    base: str,
    snapshot: LiveSnapshot,
    cache: Cache,
    settings: GatewaySettings,
    shape: Callable[[str, tuple[Rate, ...]], dict[str, Any]],
) -> Response:
    """Every rate against `base` from the live snapshot, in the body `shape` makes of them (an
    error answer when there is none); cached with the function that builds it, called again by
    the cache after each change while it is asked for (fastpath.BodyCache.live)."""

    def build() -> bytes:
        return orjson.dumps(shape(*_latest(snapshot, base)))

    try:
        return live_response(request, cache, build)
    except V6Error as exc:
        return _error(settings, exc.error_type)


@router.get("/v6/latest/{base}")
async def v6_open_latest(request: Request, base: str, snapshot: Snapshot, cache: Cache) -> Response:
    """ExchangeRate-API's open endpoint: `rates` (not `conversion_rates`) and its own fields."""
    settings = deps.settings(request)

    def shape(code: str, rates: tuple[Rate, ...]) -> dict[str, Any]:
        return {
            "result": "success",
            "provider": settings.v6_provider_url,
            "documentation": settings.v6_documentation_url + OPEN_DOCUMENTATION_SUFFIX,
            "terms_of_use": settings.v6_terms_url,
            **_times(_newest(rates)),
            "time_eol_unix": 0,
            "base_code": code,
            "rates": _with_base(code, {r.currency: r.value for r in rates}),
        }

    return _latest_answer(request, base, snapshot, cache, settings, shape)


@router.get(
    "/v6/{key}/latest/{base}",
    responses={200: {"content": {"application/json": {"example": V6_LATEST_EXAMPLE}}}},
)
async def v6_latest(
    request: Request, key: str, base: str, snapshot: Snapshot, cache: Cache, settings: Settings
) -> Response:
    """Every rate against `base`, in `conversion_rates`."""

    def shape(code: str, rates: tuple[Rate, ...]) -> dict[str, Any]:
        return {
            "result": "success",
            **_links(settings),
            **_times(_newest(rates)),
            "base_code": code,
            "conversion_rates": _with_base(code, {r.currency: r.value for r in rates}),
        }

    return _latest_answer(request, base, snapshot, cache, settings, shape)


@router.get("/v6/{key}/pair/{source}/{target}")
@router.get("/v6/{key}/pair/{source}/{target}/{amount}")
async def v6_pair(
    request: Request,
    key: str,
    source: str,
    target: str,
    snapshot: Snapshot,
    cache: Cache,
    settings: Settings,
    amount: str | None = None,
) -> Response:
    """One rate, and with `amount` the converted result (6 decimal places, half-even)."""
    try:
        value = _amount(amount) if amount is not None else None
    except V6Error as exc:
        return _error(settings, exc.error_type)

    def build() -> bytes:
        if not snapshot.entries:
            raise V6Error("no-data-available")
        served = {*snapshot.entries, "EUR"}
        src, dst = _code(source, served), _code(target, served)
        _, _, rates = views.latest_rates(snapshot.entries, src, [dst])
        rate = rates[0]
        body: dict[str, Any] = {
            "result": "success",
            **_links(settings),
            **_times(rate.observed_at),
            "base_code": src,
            "target_code": dst,
            "conversion_rate": _number(rate.value),
        }
        if value is not None:
            body["conversion_result"] = _number(money.convert(value, rate.value))
        return orjson.dumps(body)

    try:
        return live_response(request, cache, build)
    except V6Error as exc:
        return _error(settings, exc.error_type)


@router.get("/v6/{key}/history/{base}/{year}/{month}/{day}")
@router.get("/v6/{key}/history/{base}/{year}/{month}/{day}/{amount}")
async def v6_history(
    request: Request,
    key: str,
    base: str,
    year: str,
    month: str,
    day: str,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    amount: str | None = None,
) -> Response:
    """Rates of one date; with `amount`, `requested_amount` and `conversion_amounts` instead."""
    try:
        if not (year.isdigit() and month.isdigit() and day.isdigit()):
            raise V6Error("malformed-request")
        try:
            date = dt.date(int(year), int(month), int(day))
        except ValueError as exc:
            raise V6Error("malformed-request") from exc
        value = _amount(amount) if amount is not None else None
        code = _code(base)
        if date > today_utc():
            raise V6Error("no-data-available")
        try:
            reply = await stub.GetHistoricalRates(
                rates_pb2.GetHistoricalRatesRequest(date=date.isoformat(), base=code),
                timeout=settings.upstream_timeout_seconds,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise V6Error("no-data-available") from exc
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise V6Error("unsupported-code") from exc
            raise
    except V6Error as exc:
        return _error(settings, exc.error_type)
    rates = {r.currency: r.value for r in reply.rates}
    body: dict[str, Any] = {
        "result": "success",
        **_links(settings),
        "year": date.year,
        "month": date.month,
        "day": date.day,
        "base_code": reply.base,
    }
    if value is None:
        body["conversion_rates"] = _with_base(reply.base, rates)
    else:
        body["requested_amount"] = _number(money.format_decimal(value))
        body["conversion_amounts"] = {
            reply.base: _number(money.convert(value, "1")),
            **{c: _number(money.convert(value, v)) for c, v in sorted(rates.items()) if c != reply.base},
        }
    return history_response(request, cache, body)


@router.get("/v6/{key}/codes")
async def v6_codes(request: Request, key: str, stub: Stub, cache: Cache, settings: Settings) -> Response:
    """Every currency with a current rate, as `[code, name]` pairs."""
    reply = await stub.ListCurrencies(
        rates_pb2.ListCurrenciesRequest(), timeout=settings.upstream_timeout_seconds
    )
    codes = sorted({c.code for c in reply.currencies if c.active} | {"EUR"})
    body = {"result": "success", **_links(settings), "supported_codes": [[c, name_of(c)] for c in codes]}
    return history_response(request, cache, body)


@router.get("/v6/{key}/quota")
async def v6_quota(request: Request, key: str, settings: Settings) -> Response:
    """The key's requests in the current period, as counted by the meter (never cached).

    With managed keys: the key's own monthly quota (else `v6_plan_quota`), and no more than its
    daily quota has left today. Otherwise the path key's v6 requests against `v6_plan_quota`.
    Shared by every gateway when Redis is configured; this process's count otherwise.
    """
    access = deps.access(request)
    principal = caller(request)
    if access.managed and principal is not None:
        today, month = await access.meter.usage(principal.client)
        limits = principal.limits
        day_left = None if limits.per_day is None else limits.per_day - today.get("_total", 0)
        plan = limits.per_month or settings.v6_plan_quota
        quota = quota_of(plan, month.get("_total", 0), settings.v6_quota_refresh_day, day_left)
    else:
        _, month = await access.meter.usage(v6_client(key))
        quota = quota_of(settings.v6_plan_quota, month.get("_total", 0), settings.v6_quota_refresh_day)
    body = {
        "result": "success",
        **_links(settings),
        "plan_quota": quota.plan_quota,
        "requests_remaining": quota.requests_remaining,
        "refresh_day_of_month": quota.refresh_day_of_month,
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/v6/{rest:path}", include_in_schema=False)
async def v6_unknown(request: Request, rest: str, settings: Settings) -> Response:
    """Any other path under /v6 is a malformed request, as ExchangeRate-API answers it."""
    return _error(settings, "malformed-request")
