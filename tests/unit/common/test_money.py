from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurs_common import money


def test_published_figures_pass_through_untouched() -> None:
    rates = {"USD": "1.1172", "GBP": "0.83380", "JPY": "175.68"}
    assert money.rebase(rates, "EUR", "EUR") == rates
    assert money.rebase(rates, "EUR", "EUR", ["GBP", "EUR"]) == {"GBP": "0.83380", "EUR": "1"}


def test_cross_rates_are_rounded_to_ten_significant_digits() -> None:
    out = money.rebase({"USD": "1.1172", "GBP": "0.8338", "JPY": "175.68"}, "EUR", "USD")
    assert out == {"GBP": "0.746330111", "JPY": "157.2502685", "EUR": "0.8950948801"}
    assert "USD" not in out


def test_base_equal_symbol_is_one() -> None:
    assert money.rebase({"USD": "1.1172"}, "EUR", "USD", ["USD"]) == {"USD": "1"}


def test_missing_base_raises() -> None:
    with pytest.raises(KeyError):
        money.rebase({"USD": "1.1172"}, "EUR", "GBP")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.5000", "1.5"), ("100", "100"), ("0.000120", "0.00012"), ("1E+3", "1000"), ("0", "0")],
)
def test_format_decimal(value: str, expected: str) -> None:
    assert money.format_decimal(Decimal(value)) == expected


@pytest.mark.parametrize("bad", ["1e5", "NaN", "inf", "", " ", "1,5", "0x10", "--1", "1.2.3", "+1"])
def test_parse_decimal_rejects_non_plain_numbers(bad: str) -> None:
    with pytest.raises(money.DecimalFormatError):
        money.parse_decimal(bad)


@pytest.mark.parametrize("bad", ["0", "-1", "0.0"])
def test_parse_rate_requires_positive(bad: str) -> None:
    with pytest.raises(money.DecimalFormatError):
        money.parse_rate(bad)


@pytest.mark.parametrize("bad", ["0", "-3", "1000000000000001", "1.123456789"])
def test_parse_amount_bounds(bad: str) -> None:
    with pytest.raises(money.DecimalFormatError):
        money.parse_amount(bad)


def test_convert_rounds_half_even_to_six_places() -> None:
    assert money.convert(Decimal("100"), "0.8950948801") == "89.509488"
    assert money.convert(Decimal("0.0000005"), "1") == "0"  # half-even: 0.0000005 -> 0.000000
    assert money.convert(Decimal("0.0000015"), "1") == "0.000002"


@given(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4),
)
def test_cross_rate_is_within_rounding_of_exact(a: Decimal, b: Decimal) -> None:
    got = Decimal(money.cross_rate(str(a), str(b)))
    exact = b / a
    assert abs(got - exact) <= abs(exact) * Decimal("1e-9")


@pytest.mark.parametrize("text", ["١.٥", "１.５", "1.5\n", "1.5 "])
def test_decimals_are_ascii_only(text: str) -> None:
    with pytest.raises(money.DecimalFormatError):
        money.parse_rate(text)
