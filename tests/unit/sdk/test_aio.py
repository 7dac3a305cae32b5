"""AsyncKursClient's chain: cache -> Kurs -> ExchangeRate-API -> stale last good value -> typed error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from kurs_client import (
    AsyncKursClient,
    ClientConfig,
    Endpoint,
    InvalidArgumentError,
    Origin,
    Rate,
    Rates,
    UnavailableError,
    UnsupportedCurrencyError,
)
from kurs_client.exchangerate_api import ExchangeRateApiError

DAY = dt.date(2026, 10, 30)


def rates(base: str, origin: Origin = Origin.KURS, **values: str) -> Rates:
    source = "exchangerate-api" if origin is Origin.EXCHANGERATE_API else "ecb"
    return Rates(base, DAY, {c: Rate(c, Decimal(v), DAY, (source,)) for c, v in values.items()}, origin)


class FakeKurs:
    pool: Any = None

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def latest(self, base: str, symbols: Sequence[str], source: str, deadline: float) -> Rates:
        self.calls += 1
        if self.down:
            raise UnavailableError("Kurs is unavailable", ("a:1: UNAVAILABLE",))
        if base == "AED" or "AED" in symbols:
            raise UnsupportedCurrencyError("symbols", "currency AED is not served (see /currencies)")
        return rates(base, USD="1.1172", GBP="0.8338")

    async def close(self) -> None:
        pass


class FakeV6:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def latest(self, base: str, symbols: Sequence[str], deadline: float) -> Rates:
        self.calls += 1
        if self.down:
            raise ExchangeRateApiError("quota-reached")
        return rates(base, Origin.EXCHANGERATE_API, USD="1.1171", GBP="0.8337", AED="4.1030")

    async def close(self) -> None:
        pass


@pytest.fixture
def parts() -> tuple[AsyncKursClient, FakeKurs, FakeV6]:
    kurs, v6 = FakeKurs(), FakeV6()
    config = ClientConfig((Endpoint("a:1"),), cache_seconds=1800)
    return AsyncKursClient(config, transport=kurs, exchangerate_api=v6), kurs, v6  # type: ignore[arg-type]


async def test_a_fresh_cached_answer_needs_no_call(parts: tuple[AsyncKursClient, FakeKurs, FakeV6]) -> None:
    client, kurs, _ = parts
    first = await client.latest("eur", "usd,GBP")
    assert (first.origin, first.stale, first["USD"]) == (Origin.KURS, False, Decimal("1.1172"))
    again = await client.latest("EUR", ["USD", "GBP"])
    assert (again.origin, again.stale, again.values) == (Origin.CACHE, False, first.values)
    assert client.cached_latest("EUR", ("USD", "GBP")) == again
    assert kurs.calls == 1


async def test_kurs_down_falls_back_to_exchangerate_api_then_to_the_stale_value(
    parts: tuple[AsyncKursClient, FakeKurs, FakeV6],
) -> None:
    client, kurs, v6 = parts
    client.cache.ttl = 0  # every call goes out
    good = await client.latest("EUR", "USD")
    kurs.down = True
    fallback = await client.latest("EUR", "USD")
    assert (fallback.origin, fallback["USD"], fallback.rates["USD"].sources) == (
        Origin.EXCHANGERATE_API, Decimal("1.1171"), ("exchangerate-api",),
    )  # fmt: skip
    v6.down = True
    stale = await client.latest("EUR", "USD")
    assert (stale.stale, stale.origin, stale["USD"]) == (True, Origin.CACHE, Decimal("1.1171"))
    assert good["USD"] == Decimal("1.1172")
    with pytest.raises(UnavailableError) as failure:
        await client.latest("EUR", "GBP")  # never answered before: nothing to serve
    assert [a.split(":")[0] for a in failure.value.attempts] == ["kurs", "exchangerate-api"]


async def test_a_currency_kurs_lacks_comes_from_exchangerate_api(
    parts: tuple[AsyncKursClient, FakeKurs, FakeV6],
) -> None:
    client, _, v6 = parts
    answer = await client.latest("EUR", "AED")
    assert (answer.origin, answer["AED"]) == (Origin.EXCHANGERATE_API, Decimal("4.1030"))
    v6.down = True
    client.cache.clear()
    with pytest.raises(UnavailableError):
        await client.latest("EUR", "AED")


async def test_unsupported_everywhere_is_a_typed_error_not_unavailable() -> None:
    kurs = FakeKurs()
    client = AsyncKursClient(ClientConfig((Endpoint("a:1"),)), transport=kurs)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedCurrencyError) as failure:
        await client.latest("EUR", "AED")
    assert failure.value.field == "symbols"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.latest("EU1"), "base"),
        (lambda c: c.latest("EUR", "US"), "symbols"),
        (lambda c: c.latest("EUR", source="no such"), "source"),
        (lambda c: c.convert("USD", "EUR", "-1"), "amount"),
        (lambda c: c.convert("USD", "EUR", 1.5), "amount"),
        (lambda c: c.historical("2025-02-30"), "date"),
    ],
)
async def test_bad_input_is_refused_locally_naming_the_field(
    parts: tuple[AsyncKursClient, FakeKurs, FakeV6], call: Any, field: str
) -> None:
    client, kurs, _ = parts
    with pytest.raises(InvalidArgumentError) as failure:
        await call(client)
    assert failure.value.field == field
    assert kurs.calls == 0
