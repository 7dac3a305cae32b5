from __future__ import annotations

import datetime as dt

import pytest

from kurs_common import validation
from kurs_common.errors import InvalidArgument


def test_currency_normalises_case() -> None:
    assert validation.currency("base", " usd ") == "USD"


@pytest.mark.parametrize("bad", ["US", "USDX", "U$D", "12A", "", "ÄBC"])
def test_currency_rejects_malformed(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validation.currency("base", bad)
    assert info.value.field == "base"


def test_currency_must_be_served_when_a_set_is_given() -> None:
    with pytest.raises(InvalidArgument, match="not served"):
        validation.currency("to", "AED", {"USD", "EUR"})


def test_symbols_split_dedupe_and_keep_order() -> None:
    assert validation.symbols("symbols", ["gbp,JPY", "GBP", "usd"]) == ["GBP", "JPY", "USD"]
    assert validation.symbols("symbols", []) is None


def test_symbols_cap() -> None:
    codes = [f"A{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(validation.MAX_SYMBOLS + 1)]
    with pytest.raises(InvalidArgument, match="at most"):
        validation.symbols("symbols", [",".join(codes)])


def test_dates() -> None:
    assert validation.date("date", "2024-02-29") == dt.date(2024, 2, 29)
    for bad in ["2023-02-29", "2024-13-01", "24-01-01", "2024/01/01", "today"]:
        with pytest.raises(InvalidArgument):
            validation.date("date", bad)
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    with pytest.raises(InvalidArgument, match="future"):
        validation.date("date", tomorrow.isoformat())


def test_date_range_rules() -> None:
    assert validation.date_range("start_date", "2024-01-01", "end_date", "2024-12-31")
    with pytest.raises(InvalidArgument) as info:
        validation.date_range("start_date", "2024-02-01", "end_date", "2024-01-01")
    assert info.value.field == "start_date"
    with pytest.raises(InvalidArgument) as info:
        validation.date_range("start_date", "2023-01-01", "end_date", "2024-01-02")
    assert info.value.field == "end_date"
