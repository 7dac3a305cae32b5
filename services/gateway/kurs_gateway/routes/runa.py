"""Runa's own contract: the two calls the Runa standard library's currency module makes.

* `GET /runa/v1/rates?base=USD&symbols=EUR&symbols=GBP` answers what `fetch_live_exchange_rates`
  reads: each requested currency code as a top-level JSON key, its rate a decimal string
  (`{"EUR": "0.8950948801", "GBP": "0.7463301110"}`). Nothing else is in the body, so
  `rate_data[currency]` finds exactly the codes; symbols are repeated and/or comma lists, all
  currencies when absent.
* `GET /runa/v1/conversion-rate?from=USD&to=EUR` answers one `CurrencyConversionRate` with its
  seven fields: `from_currency`, `to_currency`, `exchange_rate` (decimal string),
  `rate_timestamp` (the observation time in nanoseconds since the Unix epoch, as a decimal
  string, like Runa's money primitive), `rate_source` (provenance such as `"ECB:daily-fix"`;
  a cross rate names both figures' publishers joined by `+`), `bid_ask_spread` and
  `volatility_measure`. Kurs stores no bid/ask quotes for reference rates, so the spread is
  null; the volatility is the sample standard deviation of day-over-day relative changes of
  the pair over the last VOLATILITY_DAYS calendar days of fixings (not annualised), null when
  fewer than three fixings exist or history cannot be read. `rate_date` and `observed_at`
  (ISO 8601) are added for people reading the answer.

Errors are the gateway's RFC 9457 problems, like every other route.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterable, Sequence
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from kurs.rates.v1 import rates_pb2
from kurs_common import validation
from kurs_common.errors import NotFound
from kurs_gateway import views
from kurs_gateway.deps import Cache, Settings, Snapshot, Stub
from kurs_gateway.fastpath import live_response
from kurs_gateway.params import only
from kurs_gateway.routes.rates import CODE, Base, Symbols

log = logging.getLogger(__name__)

router = APIRouter(tags=["runa"])

VOLATILITY_DAYS = 30
VOLATILITY_DIGITS = 6
MARKET_SOURCES = frozenset({"kraken", "coinbase", "binance", "bitstamp"})
_STATS = Context(prec=34)

RATES_EXAMPLE = {"EUR": "0.8950948801", "GBP": "0.7463301110"}
CONVERSION_EXAMPLE: dict[str, Any] = {
    "from_currency": "USD",
    "to_currency": "EUR",
    "exchange_rate": "0.8950948801",
    "rate_timestamp": "1761836400000000000",
    "rate_source": "ECB:daily-fix",
    "bid_ask_spread": None,
    "volatility_measure": "0.003512",
    "rate_date": "2025-10-30",
    "observed_at": "2025-10-30T15:00:00Z",
}

_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
CONVERSION_SCHEMA: dict[str, Any] = {
    "title": "CurrencyConversionRate",
    "type": "object",
    "required": [
        "from_currency",
        "to_currency",
        "exchange_rate",
        "rate_timestamp",
        "rate_source",
        "bid_ask_spread",
        "volatility_measure",
    ],
    "properties": {
        "from_currency": _TEXT,
        "to_currency": _TEXT,
        "exchange_rate": {**_TEXT, "description": "decimal string"},
        "rate_timestamp": {**_MAYBE_TEXT, "description": "observation time, nanoseconds since the epoch"},
        "rate_source": {**_TEXT, "description": "provenance, e.g. ECB:daily-fix"},
        "bid_ask_spread": {**_MAYBE_TEXT, "description": "decimal string; null: no quotes stored"},
        "volatility_measure": {**_MAYBE_TEXT, "description": "stdev of daily relative changes"},
        "rate_date": _TEXT,
        "observed_at": _MAYBE_TEXT,
    },
}
RATES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Each currency code as a key, its rate a decimal string",
    "additionalProperties": _TEXT,
}


def provenance(sources: Iterable[str]) -> str:
    """Source ids as Runa provenance strings: ("ecb",) -> "ECB:daily-fix"; several joined by "+"."""
    parts = []
    for source in sorted(set(sources)):
        if source in MARKET_SOURCES:
            kind = "spot"
        elif source == "replay":
            kind = "replay"
        else:
            kind = "daily-fix"
        parts.append(f"{source.upper()}:{kind}")
    return "+".join(parts) or "KURS:unknown"


def nanoseconds(moment: dt.datetime | None) -> str | None:
    """An aware datetime as integer nanoseconds since the epoch (exact: no float in between)."""
    if moment is None:
        return None
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000)


def volatility(values: Sequence[str]) -> str | None:
    """Sample standard deviation of the relative changes between consecutive values (Decimal)."""
    try:
        numbers = [Decimal(v) for v in values]
    except InvalidOperation:
        return None
    changes = [_STATS.divide(_STATS.subtract(b, a), a) for a, b in itertools.pairwise(numbers) if a]
    if len(changes) < 2:
        return None
    mean = _STATS.divide(sum(changes, Decimal(0)), Decimal(len(changes)))
    square = sum((_STATS.power(_STATS.subtract(c, mean), 2) for c in changes), Decimal(0))
    variance = _STATS.divide(square, Decimal(len(changes) - 1))
    deviation = _STATS.sqrt(variance)
    if deviation == 0:
        return "0"
    rounded = Context(prec=VOLATILITY_DIGITS).plus(deviation)
    return format(rounded, "f")


@router.get(
    "/runa/v1/rates",
    dependencies=[Depends(only("base", "symbols"))],
    responses={200: {"content": {"application/json": {"schema": RATES_SCHEMA, "example": RATES_EXAMPLE}}}},
)
async def runa_rates(
    request: Request,
    snapshot: Snapshot,
    cache: Cache,
    base: Base = "USD",
    symbols: Symbols = [],  # noqa: B006
) -> Response:
    """Latest rates against `base` with each currency code as a top-level key (Runa's legacy call)."""

    def build() -> bytes:
        _, _, rates = views.latest_rates(snapshot.entries, base, symbols)
        return views.dumps({r.currency: r.value for r in rates})

    return live_response(request, cache, build)


async def _history(stub: Stub, deadline: float, src: str, dst: str, newest: dt.date) -> list[str]:
    """The pair's fixings over the last VOLATILITY_DAYS days ending at `newest`, oldest first."""
    start = newest - dt.timedelta(days=VOLATILITY_DAYS)
    reply = await stub.GetTimeSeries(
        rates_pb2.GetTimeSeriesRequest(
            start_date=start.isoformat(), end_date=newest.isoformat(), base=src, symbols=[dst]
        ),
        timeout=deadline,
    )
    return [day.rates[dst] for day in reply.days if dst in day.rates]


@router.get(
    "/runa/v1/conversion-rate",
    dependencies=[Depends(only("from", "to"))],
    responses={
        200: {"content": {"application/json": {"schema": CONVERSION_SCHEMA, "example": CONVERSION_EXAMPLE}}}
    },
)
async def runa_conversion_rate(
    snapshot: Snapshot,
    stub: Stub,
    settings: Settings,
    from_: Annotated[str, Query(alias="from", description="ISO 4217 code to convert from", pattern=CODE)],
    to: Annotated[str, Query(description="ISO 4217 code to convert to", pattern=CODE)],
) -> Response:
    """A Runa `CurrencyConversionRate`: rate, observation time, provenance, spread and volatility."""
    if not snapshot.entries:
        raise NotFound("from", "no rates have been published yet")
    served = {*snapshot.entries, "EUR"}
    src = validation.currency("from", from_, served)
    dst = validation.currency("to", to, served)
    _, _, rates = views.latest_rates(snapshot.entries, src, [dst])
    rate = rates[0]
    measure: str | None = None
    if src != dst:
        try:
            measure = volatility(await _history(stub, settings.upstream_timeout_seconds, src, dst, rate.day))
        except grpc.aio.AioRpcError as exc:
            log.warning("volatility history unavailable", extra={"code": exc.code().name})
    else:
        measure = "0"
    body = {
        "from_currency": src,
        "to_currency": dst,
        "exchange_rate": rate.value,
        "rate_timestamp": nanoseconds(rate.observed_at),
        "rate_source": provenance(rate.sources),
        "bid_ask_spread": None,
        "volatility_measure": measure,
        "rate_date": rate.day.isoformat(),
        "observed_at": views.iso_utc(rate.observed_at),
    }
    return Response(views.dumps(body), media_type="application/json")
