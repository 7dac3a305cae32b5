"""ExchangeRate-API v6 in its real response format, parsed digit for digit into Decimal."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from kurs_client import NotFoundError, Origin, UnsupportedCurrencyError
from kurs_client.exchangerate_api import ExchangeRateApi, ExchangeRateApiError

LATEST = (
    '{"result":"success","documentation":"https://www.exchangerate-api.com/docs",'
    '"terms_of_use":"https://www.exchangerate-api.com/terms","time_last_update_unix":1761782401,'
    '"time_last_update_utc":"Thu, 30 Oct 2025 00:00:01 +0000","time_next_update_unix":1761868801,'
    '"time_next_update_utc":"Fri, 31 Oct 2025 00:00:01 +0000","base_code":"USD",'
    '"conversion_rates":{"USD":1,"EUR":0.8950948801234567,"GBP":0.7463,"JPY":157.25}}'
)


def api(handler: httpx.MockTransport) -> ExchangeRateApi:
    client = ExchangeRateApi("http://v6.test/", "secret key")
    client._client = httpx.AsyncClient(transport=handler)
    return client


async def test_latest_keeps_every_digit_and_marks_provenance() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, text=LATEST)

    answer = await api(httpx.MockTransport(handle)).latest("USD", ["EUR", "JPY"], 1.0)
    assert seen == ["http://v6.test/v6/secret%20key/latest/USD"]
    assert answer.values == {"EUR": Decimal("0.8950948801234567"), "JPY": Decimal("157.25")}
    assert answer.origin is Origin.EXCHANGERATE_API
    assert answer.date == dt.date(2025, 10, 30)
    assert answer.rates["EUR"].sources == ("exchangerate-api",)


async def test_pair_conversion_is_rounded_like_kurs() -> None:
    body = json.loads(LATEST)
    body.update(target_code="EUR", conversion_rate=Decimal("0.8951"))
    del body["conversion_rates"]

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path == b"/v6/secret%20key/pair/USD/EUR"
        return httpx.Response(200, text=json.dumps(body, default=str).replace('"0.8951"', "0.8951"))

    conversion = await api(httpx.MockTransport(handle)).convert("USD", "EUR", Decimal("123.45"), None, 1.0)
    assert (conversion.rate, conversion.result) == (Decimal("0.8951"), Decimal("110.500095"))


@pytest.mark.parametrize(
    ("error_type", "status", "raised"),
    [
        ("unsupported-code", 404, UnsupportedCurrencyError),
        ("no-data-available", 404, NotFoundError),
        ("invalid-key", 401, ExchangeRateApiError),
        ("quota-reached", 403, ExchangeRateApiError),
    ],
)
async def test_error_types(error_type: str, status: int, raised: type[Exception]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"result": "error", "error-type": error_type})

    with pytest.raises(raised):
        await api(httpx.MockTransport(handle)).latest("USD", [], 1.0)


async def test_an_unreachable_service_is_an_exchangerate_api_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ExchangeRateApiError):
        await api(httpx.MockTransport(handle)).latest("USD", [], 1.0)
