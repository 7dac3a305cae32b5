"""Compatibility routes for clients migrating from other rate APIs.

* Frankfurter (`/frankfurter/latest`, `/frankfurter/2024-01-15`, `/frankfurter/2024-01-01..2024-01-31`,
  `/frankfurter/currencies`, also under `/frankfurter/v1/...`): point the client's base URL at
  `http://<kurs>/frankfurter`. Parameters `base`/`from`, `symbols`/`to`, `amount`; base defaults to EUR.
* Open Exchange Rates (`/openexchangerates/api/latest.json`, `.../historical/YYYY-MM-DD.json`,
  `.../currencies.json`, `.../time-series.json`): `app_id` is accepted (and ignored unless the
  gateway's own API keys are on); base defaults to USD.

Those APIs answer rates as JSON numbers. Kurs writes the exact decimal digits as the number
literal (never through a binary float), so a client that parses numbers as decimals gets the
figure exactly; the rest of the shape is theirs.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kurs.rates.v1 import rates_pb2
from kurs_common import money, validation
from kurs_common.currencies import name_of
from kurs_common.errors import InvalidArgument
from kurs_gateway import views
from kurs_gateway.deps import Cache, Settings, Snapshot, Stub
from kurs_gateway.fastpath import history_response, live_response
from kurs_gateway.params import only

router = APIRouter(tags=["compatibility"])

EXACT_NOTE = "Rates are exact decimal literals; parse JSON numbers as decimals to keep every digit."
LICENSE = "Data: European Central Bank reference rates (and other configured sources), served by Kurs."


def _number(text: str) -> orjson.Fragment:
    return orjson.Fragment(text.encode())


def _amount(amount: str | None) -> orjson.Fragment:
    """The amount as a canonical JSON number ("007" -> 7, ".5" -> 0.5); Frankfurter's default 1.0."""
    return _number(money.format_decimal(money.parse_amount(amount)) if amount is not None else "1.0")


def _numbers(rates: dict[str, str], amount: str | None = None) -> dict[str, orjson.Fragment]:
    if amount is None:
        return {code: _number(value) for code, value in rates.items()}
    factor = money.parse_amount(amount)
    return {code: _number(money.convert(factor, value)) for code, value in rates.items()}


# -- Frankfurter --------------------------------------------------------------------------


def _frankfurter_params(request: Request) -> tuple[str, list[str], str | None]:
    q = request.query_params
    base = q.get("base") or q.get("from") or "EUR"
    symbols = [*q.getlist("symbols"), *q.getlist("to")]
    amount = q.get("amount")
    if amount is not None:
        try:
            money.parse_amount(amount)
        except money.DecimalFormatError as exc:
            raise InvalidArgument("amount", str(exc)) from exc
    return validation.currency("base", base), symbols, amount


FRANKFURTER_PARAMS = only("base", "from", "symbols", "to", "amount")


@router.get("/frankfurter/latest", dependencies=[Depends(FRANKFURTER_PARAMS)])
@router.get("/frankfurter/v1/latest", dependencies=[Depends(FRANKFURTER_PARAMS)], include_in_schema=False)
async def frankfurter_latest(request: Request, snapshot: Snapshot, cache: Cache) -> Response:
    """Frankfurter-shaped latest rates (base EUR unless `base`/`from` is given)."""
    base, symbols, amount = _frankfurter_params(request)

    def build() -> bytes:
        code, _, rates = views.latest_rates(snapshot.entries, base, symbols)
        body = {
            "amount": _amount(amount),
            "base": code,
            "date": max((r.day for r in rates), default=snapshot.day),
            "rates": _numbers({r.currency: r.value for r in rates}, amount),
        }
        return orjson.dumps(body)

    return live_response(request, cache, build)


@router.get("/frankfurter/currencies", dependencies=[Depends(only())])
@router.get("/frankfurter/v1/currencies", dependencies=[Depends(only())], include_in_schema=False)
async def frankfurter_currencies(request: Request, stub: Stub, cache: Cache, settings: Settings) -> Response:
    """Frankfurter-shaped currency names (currencies with a current rate)."""
    reply = await stub.ListCurrencies(
        rates_pb2.ListCurrenciesRequest(), timeout=settings.upstream_timeout_seconds
    )
    body = {c.code: c.name for c in reply.currencies if c.active}
    return history_response(request, cache, body)


@router.get("/frankfurter/{period}", dependencies=[Depends(FRANKFURTER_PARAMS)])
@router.get("/frankfurter/v1/{period}", dependencies=[Depends(FRANKFURTER_PARAMS)], include_in_schema=False)
async def frankfurter_period(
    request: Request, period: str, stub: Stub, cache: Cache, settings: Settings
) -> Response:
    """`YYYY-MM-DD` (one day) or `YYYY-MM-DD..YYYY-MM-DD` / `YYYY-MM-DD..` (a time series)."""
    base, symbols, amount = _frankfurter_params(request)
    wanted = views.require_symbols_shape(symbols)
    timeout = settings.upstream_timeout_seconds
    if ".." not in period:
        validation.date("period", period)
        day = await stub.GetHistoricalRates(
            rates_pb2.GetHistoricalRatesRequest(date=period, base=base, symbols=wanted), timeout=timeout
        )
        body: dict[str, Any] = {
            "amount": _amount(amount),
            "base": day.base,
            "date": day.date,
            "rates": _numbers({r.currency: r.value for r in day.rates}, amount),
        }
        return history_response(request, cache, body)
    start, _, end = period.partition("..")
    end = end or dt.datetime.now(dt.UTC).date().isoformat()
    validation.date_range("start_date", start, "end_date", end)
    series = await stub.GetTimeSeries(
        rates_pb2.GetTimeSeriesRequest(start_date=start, end_date=end, base=base, symbols=wanted),
        timeout=timeout,
    )
    days = [d.date for d in series.days]
    body = {
        "amount": _amount(amount),
        "base": series.base,
        "start_date": days[0] if days else start,
        "end_date": days[-1] if days else end,
        "rates": {d.date: _numbers(dict(sorted(d.rates.items())), amount) for d in series.days},
    }
    return history_response(request, cache, body)


# -- Open Exchange Rates --------------------------------------------------------------------

OXR_PARAMS = ("app_id", "base", "symbols", "prettyprint", "show_alternative")


def _oxr_body(base: str, day: str, rates: dict[str, str]) -> dict[str, Any]:
    moment = dt.datetime.fromisoformat(f"{day}T16:00:00+01:00") if day else dt.datetime.now(dt.UTC)
    return {
        "disclaimer": EXACT_NOTE,
        "license": LICENSE,
        "timestamp": calendar.timegm(moment.utctimetuple()),
        "base": base,
        "rates": _numbers(rates),
    }


@router.get("/openexchangerates/api/latest.json", dependencies=[Depends(only(*OXR_PARAMS))])
async def oxr_latest(request: Request, snapshot: Snapshot, cache: Cache) -> Response:
    """Open-Exchange-Rates-shaped latest rates."""
    q = request.query_params
    base, symbols = q.get("base", "USD"), q.getlist("symbols")

    def build() -> bytes:
        code, _, rates = views.latest_rates(snapshot.entries, base, symbols)
        day = max((r.day for r in rates), default=None)
        body = _oxr_body(code, day.isoformat() if day else "", {r.currency: r.value for r in rates})
        return orjson.dumps(body)

    return live_response(request, cache, build)


@router.get("/openexchangerates/api/historical/{day}.json", dependencies=[Depends(only(*OXR_PARAMS))])
async def oxr_historical(
    request: Request, day: str, stub: Stub, cache: Cache, settings: Settings
) -> Response:
    """Open-Exchange-Rates-shaped rates of one date."""
    validation.date("date", day)
    q = request.query_params
    base = validation.currency("base", q.get("base", "USD"))
    reply = await stub.GetHistoricalRates(
        rates_pb2.GetHistoricalRatesRequest(
            date=day, base=base, symbols=views.require_symbols_shape(q.getlist("symbols"))
        ),
        timeout=settings.upstream_timeout_seconds,
    )
    return history_response(
        request, cache, _oxr_body(reply.base, reply.date, {r.currency: r.value for r in reply.rates})
    )


@router.get(
    "/openexchangerates/api/time-series.json",
    dependencies=[Depends(only(*OXR_PARAMS, "start", "end"))],
)
async def oxr_timeseries(request: Request, stub: Stub, cache: Cache, settings: Settings) -> Response:
    """Open-Exchange-Rates-shaped time series (`start`, `end`)."""
    q = request.query_params
    start, end = q.get("start", ""), q.get("end", "")
    validation.date_range("start", start, "end", end)
    base = validation.currency("base", q.get("base", "USD"))
    reply = await stub.GetTimeSeries(
        rates_pb2.GetTimeSeriesRequest(
            start_date=start,
            end_date=end,
            base=base,
            symbols=views.require_symbols_shape(q.getlist("symbols")),
        ),
        timeout=settings.upstream_timeout_seconds,
    )
    body = {
        "disclaimer": EXACT_NOTE,
        "license": LICENSE,
        "start_date": start,
        "end_date": end,
        "base": reply.base,
        "rates": {d.date: _numbers(dict(sorted(d.rates.items()))) for d in reply.days},
    }
    return history_response(request, cache, body)


@router.get(
    "/openexchangerates/api/currencies.json",
    dependencies=[Depends(only("show_alternative", "show_inactive", "prettyprint", "app_id"))],
)
async def oxr_currencies(request: Request, stub: Stub, cache: Cache, settings: Settings) -> Response:
    """Open-Exchange-Rates-shaped currency names."""
    reply = await stub.ListCurrencies(
        rates_pb2.ListCurrenciesRequest(), timeout=settings.upstream_timeout_seconds
    )
    inactive = request.query_params.get("show_inactive") in ("1", "true")
    body = {c.code: name_of(c.code) for c in reply.currencies if c.active or inactive}
    return history_response(request, cache, body)
