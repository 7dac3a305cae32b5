"""USD triangulation: a missing pair from two figures per USD, 10 significant digits, half-even."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kurs_client import Rate, Rates, UnsupportedCurrencyError
from kurs_client.triangulate import rates_with_triangulation

USD_TABLE = {"EUR": "0.8950948801", "GBP": "0.746330111", "JPY": "157.2502685"}


def table(base: str, codes: dict[str, str], day: dt.date) -> Rates:
    return Rates(base, day, {c: Rate(c, Decimal(v), day, ("ecb",)) for c, v in codes.items()})


async def fetch(base: str, symbols: tuple[str, ...]) -> Rates:
    if base != "USD":
        raise UnsupportedCurrencyError("base", f"currency {base} is not served")
    wanted = symbols or tuple(USD_TABLE)
    return table("USD", {c: USD_TABLE[c] for c in wanted if c in USD_TABLE}, dt.date(2026, 10, 30))


async def test_a_refused_base_is_answered_through_usd() -> None:
    answer = await rates_with_triangulation(fetch, "EUR", ("GBP", "USD"))
    assert answer.base == "EUR"
    assert answer["GBP"] == Decimal("0.8338")  # 0.746330111 / 0.8950948801 -> 10 significant digits
    assert answer.rates["GBP"].value == Decimal("0.8338000000")
    assert answer["USD"] == Decimal("1.117200000")
    assert answer.rates["GBP"].via == "USD"
    assert answer.rates["GBP"].sources == ("ecb",)


async def test_symbols_missing_from_a_direct_answer_are_completed() -> None:
    async def partial(base: str, symbols: tuple[str, ...]) -> Rates:
        if base == "EUR":
            return table("EUR", {"GBP": "0.8338"}, dt.date(2026, 10, 30))
        return await fetch(base, symbols)

    answer = await rates_with_triangulation(partial, "EUR", ("GBP", "JPY"))
    assert list(answer.rates) == ["GBP", "JPY"]
    assert answer.rates["GBP"].via is None
    assert answer.rates["JPY"].via == "USD"
    assert answer["JPY"] == Decimal("175.6800000")


async def test_a_currency_not_even_served_through_usd_is_a_typed_error() -> None:
    with pytest.raises(UnsupportedCurrencyError) as failure:
        await rates_with_triangulation(fetch, "EUR", ("XAU",))
    assert failure.value.field == "symbols"
