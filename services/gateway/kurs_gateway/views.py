"""Pure functions that turn snapshot entries and gRPC replies into the public JSON bodies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from kurs.rates.v1 import rates_pb2
from kurs_common import validation
from kurs_common.errors import NotFound
from kurs_common.quotes import rebase_entries
from kurs_common.rate import UNOBSERVED, Rate, observed
from kurs_gateway.snapshot import PIVOT


def iso_utc(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def dumps(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)


def latest_rates(
    entries: Mapping[str, Rate], base: str, symbols: Sequence[str]
) -> tuple[str, list[str] | None, tuple[Rate, ...]]:
    """Validate base/symbols against what the snapshot serves and re-base. Raises QueryError."""
    if not entries:
        raise NotFound("base", "no rates have been published yet")
    served = {*entries, PIVOT}
    code = validation.currency("base", base, served)
    wanted = validation.symbols("symbols", symbols, served)
    return code, wanted, rebase_entries(entries, PIVOT, code, wanted)


def latest_body(base: str, rates: Sequence[Rate], sequence: int) -> dict[str, Any]:
    newest = observed(max((r.observed_at for r in rates), default=UNOBSERVED))
    body: dict[str, Any] = {
        "base": base,
        "date": max((r.day for r in rates), default=None),
        "timestamp": iso_utc(newest),
        "rates": {r.currency: r.value for r in rates},
        "sources": sorted({s for r in rates for s in r.sources}),
        "sequence": sequence,
    }
    if any(r.replay for r in rates):
        body["replay"] = True
    return body


def providers(rates: Sequence[Rate]) -> dict[str, dict[str, Any]]:
    """Per currency: the sources its figure came from and the date it belongs to (`expand=providers`)."""
    return _providers((r.currency, r.day.isoformat(), r.sources, r.flag) for r in rates)


def _providers(rates: Iterable[tuple[str, str, Sequence[str], str]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for currency, day, sources, flag in rates:
        entry: dict[str, Any] = {"date": day, "sources": list(sources)}
        if flag:
            entry["flag"] = flag
        out[currency] = entry
    return out


def reply_body(
    base: str, date: str, rates: Sequence[rates_pb2.Rate], *, providers: bool = False
) -> dict[str, Any]:
    """The body of a rates reply of the rates service (a publisher's figures, a past date)."""
    body: dict[str, Any] = {
        "base": base,
        "date": date,
        "rates": {r.currency: r.value for r in rates},
        "sources": sorted({s for r in rates for s in r.sources}),
    }
    flagged = {r.currency: r.flag for r in rates if r.flag}
    if flagged:
        body["flags"] = flagged  # a publisher's figures the blend left out, and why
    if providers:
        body["providers"] = _providers((r.currency, r.date, r.sources, r.flag) for r in rates)
    return body


def historical_body(
    reply: rates_pb2.GetHistoricalRatesResponse, *, providers: bool = False
) -> dict[str, Any]:
    body = reply_body(reply.base, reply.date, reply.rates, providers=providers)
    head = {"base": body.pop("base"), "date": body.pop("date"), "requested_date": reply.requested_date}
    return {**head, **body}


def timeseries_body(reply: rates_pb2.GetTimeSeriesResponse) -> dict[str, Any]:
    return {
        "base": reply.base,
        "start_date": reply.start_date,
        "end_date": reply.end_date,
        "rates": {day.date: dict(sorted(day.rates.items())) for day in reply.days},
        "sources": list(reply.sources),
    }


def convert_body(reply: rates_pb2.ConvertResponse) -> dict[str, Any]:
    return {
        "from": reply.from_currency,
        "to": reply.to_currency,
        "amount": reply.amount,
        "rate": reply.rate,
        "result": reply.result,
        "date": reply.date,
        "sources": list(reply.sources),
    }


def currencies_body(reply: rates_pb2.ListCurrenciesResponse) -> dict[str, Any]:
    return {
        "currencies": {
            c.code: {"name": c.name, "first_date": c.first_date, "last_date": c.last_date, "active": c.active}
            for c in reply.currencies
        }
    }


def require_currency_shape(field: str, value: str) -> str:
    """Structural check only (served codes are checked by the rates service)."""
    return validation.currency(field, value)


def require_symbols_shape(values: Sequence[str]) -> list[str]:
    return validation.symbols("symbols", values) or []
