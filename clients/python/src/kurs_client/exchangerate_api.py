"""ExchangeRate-API v6, the second link of the fallback chain, in its real response format.

    GET {url}/v6/{key}/latest/{base}               -> conversion_rates, time_last_update_unix
    GET {url}/v6/{key}/pair/{from}/{to}            -> conversion_rate
    GET {url}/v6/{key}/history/{base}/{y}/{m}/{d}  -> conversion_rates (paid plans)
    errors: {"result": "error", "error-type": "unsupported-code" | "malformed-request" |
             "invalid-key" | "inactive-account" | "quota-reached" | "no-data-available" | ...}

Rates are JSON numbers; they are parsed straight to Decimal (never a float), so every digit sent
is kept. Every figure is marked with the source "exchangerate-api" and the date of
`time_last_update_unix` (UTC).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from kurs_client.errors import NotFoundError, UnsupportedCurrencyError
from kurs_client.models import Conversion, Origin, Rate, Rates, convert_amount, parse_decimal

SOURCE = "exchangerate-api"


class ExchangeRateApiError(Exception):
    """ExchangeRate-API could not answer (any error type but the typed ones, or no answer)."""


class ExchangeRateApi:
    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        return self._client

    async def _get(self, path: str, timeout: float) -> Mapping[str, Any]:
        url = f"{self.url}/v6/{quote(self.key, safe='')}/{path}"
        try:
            response = await self.client.get(url, timeout=timeout)
            body = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
        except (httpx.HTTPError, ValueError) as exc:
            raise ExchangeRateApiError(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict):
            raise ExchangeRateApiError("the answer is not a JSON object")
        if body.get("result") != "success":
            error_type = str(body.get("error-type", f"HTTP {response.status_code}"))
            if error_type == "unsupported-code":
                raise UnsupportedCurrencyError("currency", "ExchangeRate-API does not support it")
            if error_type == "no-data-available":
                raise NotFoundError("date", "ExchangeRate-API has no data for it")
            raise ExchangeRateApiError(error_type)
        return body

    @staticmethod
    def _when(body: Mapping[str, Any]) -> dt.datetime | None:
        unix = body.get("time_last_update_unix")
        return dt.datetime.fromtimestamp(int(unix), dt.UTC) if unix is not None else None

    @staticmethod
    def _table(
        body: Mapping[str, Any],
        base: str,
        symbols: Sequence[str],
        day: dt.date | None,
        at: dt.datetime | None,
    ) -> dict[str, Rate]:
        table: Mapping[str, Any] = body.get("conversion_rates") or {}
        wanted = symbols or [c for c in table if c != base]
        return {
            code: Rate(code, parse_decimal(table[code]), day, (SOURCE,), observed_at=at)
            for code in wanted
            if code in table
        }

    async def latest(self, base: str, symbols: Sequence[str], timeout: float) -> Rates:
        body = await self._get(f"latest/{quote(base)}", timeout)
        at = self._when(body)
        day = at.date() if at else None
        return Rates(
            base=str(body.get("base_code", base)),
            date=day,
            rates=self._table(body, base, symbols, day, at),
            origin=Origin.EXCHANGERATE_API,
        )

    async def historical(self, date: dt.date, base: str, symbols: Sequence[str], timeout: float) -> Rates:
        body = await self._get(f"history/{quote(base)}/{date.year}/{date.month}/{date.day}", timeout)
        return Rates(
            base=str(body.get("base_code", base)),
            date=date,
            rates=self._table(body, base, symbols, date, None),
            origin=Origin.EXCHANGERATE_API,
            requested_date=date,
        )

    async def convert(
        self, from_: str, to: str, amount: Decimal, date: dt.date | None, timeout: float
    ) -> Conversion:
        if date is None:
            body = await self._get(f"pair/{quote(from_)}/{quote(to)}", timeout)
            at = self._when(body)
            rate, day = parse_decimal(body["conversion_rate"]), at.date() if at else None
        else:
            day_rates = await self.historical(date, from_, [to], timeout)
            if to not in day_rates.rates:
                raise UnsupportedCurrencyError("to", "ExchangeRate-API does not support it")
            rate, day = day_rates.rates[to].value, date
        return Conversion(
            from_currency=from_,
            to_currency=to,
            amount=amount,
            rate=rate,
            result=convert_amount(amount, rate),
            date=day,
            sources=(SOURCE,),
            origin=Origin.EXCHANGERATE_API,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
