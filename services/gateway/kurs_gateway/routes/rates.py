"""REST: latest, historical, time series, convert, currencies."""

from __future__ import annotations

from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Query, Request
from pydantic import StringConstraints
from starlette.responses import Response

from kurs.rates.v1 import rates_pb2
from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, NotFound
from kurs_gateway import deps, series_body, views
from kurs_gateway.deps import Cache, Settings, Snapshot, Stub
from kurs_gateway.fastpath import history_response, live_response
from kurs_gateway.params import only

router = APIRouter(tags=["rates"])

CODE = r"^\s*[A-Za-z]{3,4}\s*$"  # ISO 4217, or a crypto ticker such as USDT
CODES = r"^\s*[A-Za-z]{3,4}\s*(,\s*[A-Za-z]{3,4}\s*)*$"
DATE = r"^\d{4}-\d{2}-\d{2}$"
AMOUNT = r"^\s*(\d+(\.\d*)?|\.\d+)\s*$"

Base = Annotated[str, Query(description="ISO 4217 code of the base currency", examples=["USD"], pattern=CODE)]
Symbols = Annotated[
    list[Annotated[str, StringConstraints(pattern=CODES)]],
    Query(description="Currencies to return: comma list and/or repeated parameter; all when absent"),
]
Source = Annotated[
    str | None,
    Query(
        description=(
            "A publisher id (see /sources): its own figures exactly as published, in its own base "
            "(another base is one division). Absent: the blended reference series."
        ),
        examples=["boe"],
        pattern=r"^\s*[A-Za-z0-9][A-Za-z0-9_-]{0,31}\s*$",
    ),
]
Expand = Annotated[
    str | None,
    Query(
        description="`providers`: add, per currency, the sources its figure came from and its date",
        pattern=r"^providers$",
    ),
]

RATES_EXAMPLE: dict[str, Any] = {
    "base": "USD",
    "date": "2026-10-30",
    "rates": {"EUR": "0.8950948801", "GBP": "0.7463301110", "JPY": "157.2502685"},
}


@router.get(
    "/rates/latest",
    dependencies=[Depends(only("base", "symbols", "source", "expand"))],
    responses={200: {"content": {"application/json": {"example": RATES_EXAMPLE}}}},
)
async def latest(
    request: Request,
    snapshot: Snapshot,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
    source: Source = None,
    expand: Expand = None,
) -> Response:
    """The newest rate of every currency (or of `symbols`) against `base`.

    The blended series comes from memory: each currency's freshest live tick, else its newest
    blended fixing (its own date shown with `expand=providers`). With base EUR the ECB's
    published figures come back digit for digit; other bases are cross rates rounded to 10
    significant digits. With `source`, that publisher's newest figures as published.
    """
    if source is not None:
        code = views.require_currency_shape("base", base)
        reply = await stub.GetLatestRates(
            rates_pb2.GetLatestRatesRequest(
                base=code, symbols=views.require_symbols_shape(symbols), source=source.strip().lower()
            ),
            timeout=settings.upstream_timeout_seconds,
        )
        body = views.reply_body(reply.base, reply.date, reply.rates, providers=expand is not None)
        return history_response(request, cache, body)

    def build() -> bytes:
        code, _, rates = views.latest_rates(snapshot.entries, base, symbols)
        body = views.latest_body(code, rates, snapshot.sequence)
        if expand is not None:
            body["providers"] = views.providers(rates)
        return views.dumps(body)

    return live_response(request, cache, build)


@router.get("/rates/historical", dependencies=[Depends(only("date", "base", "symbols", "source", "expand"))])
async def historical(
    request: Request,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    date: Annotated[
        str,
        Query(
            description="YYYY-MM-DD; a weekend or holiday answers the last business day before", pattern=DATE
        ),
    ],
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
    source: Source = None,
    expand: Expand = None,
) -> Response:
    """Rates of one business date (`date` in the answer) for the date asked (`requested_date`).

    The blended series answers each currency with its newest figure of the week up to that
    date (one publisher's holiday hides no other's currency; `expand=providers` shows each
    figure's own date and contributors); with `source`, that publisher's figures as published.
    """
    validation.date("date", date)
    code = views.require_currency_shape("base", base)
    wanted = views.require_symbols_shape(symbols)
    reply = await stub.GetHistoricalRates(
        rates_pb2.GetHistoricalRatesRequest(
            date=date, base=code, symbols=wanted, source=(source or "").strip().lower()
        ),
        timeout=settings.upstream_timeout_seconds,
    )
    return history_response(request, cache, views.historical_body(reply, providers=expand is not None))


_TIMESERIES_PARAMS = only("start_date", "end_date", "base", "symbols", "source")


async def _timeseries_params(request: Request) -> None:
    # On the event loop: FastAPI runs a plain-def dependency in its thread pool, one thread hop
    # per dependency and request (the stub, cache and settings are read from app.state below).
    _TIMESERIES_PARAMS(request)


@router.get("/rates/timeseries", dependencies=[Depends(_timeseries_params)])
async def timeseries(
    request: Request,
    start_date: Annotated[str, Query(description="YYYY-MM-DD, inclusive", pattern=DATE)],
    end_date: Annotated[
        str,
        Query(description=f"YYYY-MM-DD, inclusive; at most {validation.MAX_RANGE_DAYS} days", pattern=DATE),
    ],
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
    source: Source = None,
) -> Response:
    """Rates for every publication day between the two dates (with `source`, that publisher's)."""
    stub, cache, settings = deps.rates_stub(request), deps.cache(request), deps.settings(request)
    validation.date_range("start_date", start_date, "end_date", end_date)
    code = views.require_currency_shape("base", base)
    wanted = views.require_symbols_shape(symbols)
    name = (source or "").strip().lower()
    query = rates_pb2.GetTimeSeriesJsonRequest(
        start_date=start_date, end_date=end_date, base=code, symbols=wanted, source=name
    )
    try:  # the days come as prebuilt JSON, passed through without decoding (series_body)
        prebuilt = await stub.GetTimeSeriesJson(query, timeout=settings.upstream_timeout_seconds)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.UNIMPLEMENTED:
            raise
        # A rates service older than GetTimeSeriesJson (during a rolling upgrade).
        reply = await stub.GetTimeSeries(
            rates_pb2.GetTimeSeriesRequest(
                start_date=start_date, end_date=end_date, base=code, symbols=wanted, source=name
            ),
            timeout=settings.upstream_timeout_seconds,
        )
        return history_response(request, cache, views.timeseries_body(reply))
    raw = series_body.timeseries_bytes(prebuilt)
    cache.store(request.url.path, request.scope["query_string"], raw)
    return Response(raw, media_type="application/json")


@router.get("/rates/convert", dependencies=[Depends(only("from", "to", "amount", "date", "source"))])
async def convert(
    request: Request,
    snapshot: Snapshot,
    stub: Stub,
    cache: Cache,
    settings: Settings,
    from_: Annotated[str, Query(alias="from", description="ISO 4217 code to convert from", pattern=CODE)],
    to: Annotated[str, Query(description="ISO 4217 code to convert to", pattern=CODE)],
    amount: Annotated[
        str,
        Query(
            description=f"Decimal > 0, at most {money.format_decimal(money.MAX_AMOUNT)}, 8 decimals",
            pattern=AMOUNT,
        ),
    ],
    date: Annotated[str | None, Query(description="YYYY-MM-DD; latest when absent", pattern=DATE)] = None,
    source: Source = None,
) -> Response:
    """`amount` of `from` in `to`; result rounded to 6 decimal places (half-even)."""
    src = views.require_currency_shape("from", from_)
    dst = views.require_currency_shape("to", to)
    try:
        value = money.parse_amount(amount)
    except money.DecimalFormatError as exc:
        raise InvalidArgument("amount", str(exc)) from exc
    if date is not None or source is not None:
        if date is not None:
            validation.date("date", date)
        reply = await stub.Convert(
            rates_pb2.ConvertRequest(
                from_currency=src,
                to_currency=dst,
                amount=amount.strip(),
                date=date or "",
                source=(source or "").strip().lower(),
            ),
            timeout=settings.upstream_timeout_seconds,
        )
        return history_response(request, cache, views.convert_body(reply))

    def build() -> bytes:
        if not snapshot.entries:
            raise NotFound("from", "no rates have been published yet")
        served = {*snapshot.entries, "EUR"}
        validation.currency("from", src, served)
        validation.currency("to", dst, served)
        _, _, rates = views.latest_rates(snapshot.entries, src, [dst])
        rate = rates[0]
        body = {
            "from": src,
            "to": dst,
            "amount": money.format_decimal(value),
            "rate": rate.value,
            "result": money.convert(value, rate.value),
            "date": rate.day,
            "sources": list(rate.sources),
        }
        return views.dumps(body)

    return live_response(request, cache, build)


@router.get("/currencies", dependencies=[Depends(only())])
async def currencies(request: Request, stub: Stub, cache: Cache, settings: Settings) -> Response:
    """Every currency served, with its ISO 4217 name and the first and last dates available."""
    reply = await stub.ListCurrencies(
        rates_pb2.ListCurrenciesRequest(), timeout=settings.upstream_timeout_seconds
    )
    return history_response(request, cache, views.currencies_body(reply))
