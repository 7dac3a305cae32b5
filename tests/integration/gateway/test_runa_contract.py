"""Contract suite: a Python transcription of clients/runa/kurs_conversion.runa against the gateway.

The transcription makes exactly the requests the generated module makes (its constants are read
from the module itself) and parses the answers the same way; BigDecimal.multiply_high_precision
(a, b, p) is taken as a x b rounded half-even to p decimal places. Conversions must give the same
digits as /rates/convert.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh
from support.gateway_http import dead_url

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MODULE = Path(__file__).resolve().parents[3] / "clients" / "runa" / "kurs_conversion.runa"


class NetworkError(Exception):
    pass


class InvalidOperation(Exception):
    pass


def multiply(a: str, b: str, places: int) -> str:
    return str((Decimal(a) * Decimal(b)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def divide(a: str, b: str, places: int) -> str:
    return str((Decimal(a) / Decimal(b)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


class RunaConversion:
    """The generated module's processes, transcribed; the cache file is a dict, time is settable."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        source = MODULE.read_text(encoding="utf-8")
        self.const = dict(re.findall(r'^Let (\w+) be "([^"]*)"$', source, re.MULTILINE))
        self.cache_minutes = int(
            re.findall(r"^Let CACHE_DURATION_MINUTES be (\d+)$", source, re.MULTILINE)[0]
        )
        self.http = http
        self.cache_file: dict[str, dict[str, str]] = {}
        self.now = 1_000_000
        self.requests: list[str] = []

    async def _get(self, url: str) -> httpx.Response:
        self.requests.append(url)
        try:
            return await self.http.get(url)
        except httpx.HTTPError as exc:
            raise NetworkError(str(exc)) from exc

    async def fetch_live_exchange_rates(
        self, base: str, targets: list[str], api_endpoint: str
    ) -> dict[str, Any]:
        c = self.const
        url = f"{api_endpoint}?{c['KURS_BASE_PARAMETER']}={base}"
        for currency in targets:
            url += f"&{c['KURS_SYMBOLS_PARAMETER']}={currency}"
        response = await self._get(url)
        if response.status_code != 200:
            raise NetworkError(f"Failed to fetch exchange rates: HTTP {response.status_code}")
        data = json.loads(response.text, parse_float=Decimal)
        return {
            f"{base}_to_{code}": {"exchange_rate": str(data[code]), "rate_source": "kurs", "to": code}
            for code in targets
            if code in data
        }

    async def fetch_v6_exchange_rates(
        self, base: str, targets: list[str], v6_url: str, key: str
    ) -> dict[str, Any]:
        c = self.const
        response = await self._get(f"{v6_url}{c['V6_PATH_PREFIX']}{key}{c['V6_LATEST_SEGMENT']}{base}")
        if response.status_code != 200:
            raise NetworkError(f"Failed to fetch exchange rates: HTTP {response.status_code}")
        data = json.loads(response.text, parse_float=Decimal, parse_int=Decimal)
        if data["result"] != "success":
            raise NetworkError(f"ExchangeRate-API error: {data['error-type']}")
        rates = data[c["V6_RATES_FIELD"]]
        return {
            f"{base}_to_{code}": {
                "exchange_rate": str(rates[code]),
                "rate_source": "exchangerate-api",
                "to": code,
            }
            for code in targets
            if code in rates
        }

    def cache_exchange_rates(self, rates: dict[str, Any], minutes: int) -> None:
        for key, info in rates.items():
            self.cache_file[key] = {**info, "expires_at": str(self.now + minutes * 60)}

    def load_cached_exchange_rates(self, required: list[str]) -> dict[str, str]:
        return {
            k: e["exchange_rate"]
            for k, e in self.cache_file.items()
            if self.now < int(e["expires_at"]) and k in required
        }

    def load_stale_exchange_rates(self, required: list[str]) -> dict[str, Any]:
        return {k: {**e, "rate_source": "cache:stale"} for k, e in self.cache_file.items() if k in required}

    async def fetch_exchange_rates_with_fallback(
        self, base: str, targets: list[str], api_endpoint: str, v6_url: str, v6_key: str
    ) -> dict[str, Any]:
        required = [f"{base}_to_{t}" for t in targets]
        try:
            rates = await self.fetch_live_exchange_rates(base, targets, api_endpoint)
            if rates:
                self.cache_exchange_rates(rates, self.cache_minutes)
                return rates
        except NetworkError:
            pass
        if v6_url:
            try:
                rates = await self.fetch_v6_exchange_rates(base, targets, v6_url, v6_key)
                if rates:
                    self.cache_exchange_rates(rates, self.cache_minutes)
                    return rates
            except NetworkError:
                pass
        stale = self.load_stale_exchange_rates(required)
        if stale:
            return stale
        raise NetworkError(f"No exchange rate source answered for {base}")

    def convert_currency(self, amount: str, src: str, dst: str, rates: dict[str, str]) -> dict[str, str]:
        via = self.const["TRIANGULATION_CURRENCY"]
        if src == dst:
            return {"converted_value": amount, "conversion_factor": "1"}
        if f"{src}_to_{dst}" in rates:
            rate = rates[f"{src}_to_{dst}"]
            return {"converted_value": multiply(amount, rate, 6), "conversion_factor": rate}
        if f"{dst}_to_{src}" in rates:
            rate = divide("1", rates[f"{dst}_to_{src}"], 8)
            return {"converted_value": multiply(amount, rate, 6), "conversion_factor": rate}
        if f"{src}_to_{via}" in rates and f"{via}_to_{dst}" in rates:
            first, second = rates[f"{src}_to_{via}"], rates[f"{via}_to_{dst}"]
            return {
                "converted_value": multiply(multiply(amount, first, 8), second, 6),
                "conversion_factor": multiply(first, second, 8),
            }
        raise InvalidOperation(f"Exchange rate not available for {src} to {dst}")

    async def convert_currency_with_fallback(
        self, amount: str, src: str, dst: str, api_endpoint: str, v6_url: str = "", v6_key: str = ""
    ) -> dict[str, str]:
        key = f"{src}_to_{dst}"
        cached = self.load_cached_exchange_rates([key])
        if key in cached:
            return {"converted_value": multiply(amount, cached[key], 6), "conversion_method": "cached"}
        live = await self.fetch_exchange_rates_with_fallback(src, [dst], api_endpoint, v6_url, v6_key)
        if key not in live:
            raise InvalidOperation(f"Live exchange rate not available for {src} to {dst}")
        rate = live[key]["exchange_rate"]
        stale = live[key]["rate_source"] == "cache:stale"
        return {
            "converted_value": multiply(amount, rate, 6),
            "conversion_factor": rate,
            "conversion_method": "stale_cached_rate" if stale else "live_currency_conversion",
        }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("contract"), recent_history_zip) as m:
        yield m


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def rest_convert(
    http: httpx.AsyncClient, mesh: Mesh, src: str, dst: str, amount: str
) -> dict[str, Any]:
    reply = await http.get(
        f"{mesh.gateway_url}/rates/convert", params={"from": src, "to": dst, "amount": amount}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.mark.parametrize(
    ("src", "dst", "amount"), [("USD", "EUR", "100"), ("EUR", "GBP", "250.5"), ("GBP", "JPY", "1234.56")]
)
async def test_same_digits_as_rates_convert(
    mesh: Mesh, http: httpx.AsyncClient, src: str, dst: str, amount: str
) -> None:
    runa = RunaConversion(http)
    endpoint = mesh.gateway_url + runa.const["KURS_RATES_PATH"]
    result = await runa.convert_currency_with_fallback(amount, src, dst, endpoint)
    expected = await rest_convert(http, mesh, src, dst, amount)
    assert result["conversion_factor"] == expected["rate"]
    assert Decimal(result["converted_value"]) == Decimal(expected["result"])
    assert result["converted_value"].rstrip("0").rstrip(".") == expected["result"]
    assert runa.requests == [f"{endpoint}?base={src}&symbols={dst}"]
    again = await runa.convert_currency_with_fallback(amount, src, dst, endpoint)
    assert again["conversion_method"] == "cached"
    assert len(runa.requests) == 1


async def test_v6_then_stale_cache_then_typed_error(mesh: Mesh, http: httpx.AsyncClient) -> None:
    runa = RunaConversion(http)
    dead = dead_url() + runa.const["KURS_RATES_PATH"]
    via_v6 = await runa.convert_currency_with_fallback(
        "100", "USD", "EUR", dead, mesh.gateway_url, "some-key"
    )
    expected = await rest_convert(http, mesh, "USD", "EUR", "100")
    assert Decimal(via_v6["converted_value"]) == Decimal(expected["result"])
    assert runa.requests[-1] == f"{mesh.gateway_url}/v6/some-key/latest/USD"
    runa.now += 31 * 60  # the cached value expires after 30 minutes
    stale = await runa.convert_currency_with_fallback("100", "USD", "EUR", dead, dead_url(), "k")
    assert stale["conversion_method"] == "stale_cached_rate"
    assert stale["conversion_factor"] == via_v6["conversion_factor"]
    with pytest.raises(NetworkError, match="No exchange rate source answered for USD"):
        await runa.convert_currency_with_fallback("100", "USD", "CHF", dead, "", "")
    live = mesh.gateway_url + runa.const["KURS_RATES_PATH"]
    with pytest.raises(NetworkError, match="HTTP 400"):
        await runa.fetch_live_exchange_rates("USD", ["XXQ"], live)


async def test_offline_triangulation_through_usd(mesh: Mesh, http: httpx.AsyncClient) -> None:
    runa = RunaConversion(http)
    endpoint = mesh.gateway_url + runa.const["KURS_RATES_PATH"]
    to_usd = await runa.fetch_live_exchange_rates("GBP", ["USD"], endpoint)
    from_usd = await runa.fetch_live_exchange_rates("USD", ["JPY"], endpoint)
    rates = {k: v["exchange_rate"] for k, v in {**to_usd, **from_usd}.items()}
    result = runa.convert_currency("1234.56", "GBP", "JPY", rates)
    expected = await rest_convert(http, mesh, "GBP", "JPY", "1234.56")
    # Runa rounds each leg (8 then 6 places) and Kurs's two USD cross rates are each rounded to
    # 10 significant digits, so the offline path agrees closely but not necessarily digit for digit.
    assert abs(Decimal(result["converted_value"]) - Decimal(expected["result"])) <= Decimal(
        expected["result"]
    ) * Decimal("1e-8")
    reverse = runa.convert_currency("100", "EUR", "USD", {"USD_to_EUR": "0.8"})
    assert reverse == {"converted_value": "125.000000", "conversion_factor": "1.25000000"}
    with pytest.raises(InvalidOperation):
        runa.convert_currency("1", "GBP", "CHF", rates)
