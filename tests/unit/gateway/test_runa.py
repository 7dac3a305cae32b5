"""Runa contract helpers: provenance strings, nanosecond timestamps, volatility in decimal."""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal

import pytest

from kurs_gateway.routes.runa import nanoseconds, provenance, volatility


@pytest.mark.parametrize(
    ("sources", "text"),
    [
        (("ecb",), "ECB:daily-fix"),
        (("nbp", "ecb"), "ECB:daily-fix+NBP:daily-fix"),
        (("kraken",), "KRAKEN:spot"),
        (("replay",), "REPLAY:replay"),
        ((), "KURS:unknown"),
    ],
)
def test_provenance(sources: tuple[str, ...], text: str) -> None:
    assert provenance(sources) == text


def test_nanoseconds_exact() -> None:
    moment = dt.datetime(2025, 10, 30, 15, 0, 0, 123456, tzinfo=dt.UTC)
    assert nanoseconds(moment) == "1761836400123456000"
    assert nanoseconds(None) is None


def test_volatility_matches_a_float_reference_to_six_digits() -> None:
    values = ["1.0800", "1.0850", "1.0790", "1.0812", "1.0901"]
    changes = [(b - a) / a for a, b in zip(map(float, values), map(float, values[1:]), strict=False)]
    expected = statistics.stdev(changes)
    assert Decimal(volatility(values) or "nan") == pytest.approx(Decimal(repr(expected)), rel=Decimal("1e-5"))
    assert len((volatility(values) or "").replace("0.", "").lstrip("0")) <= 6


def test_volatility_needs_three_values() -> None:
    assert volatility(["1.1", "1.2"]) is None
    assert volatility([]) is None
    assert volatility(["1.1", "1.1", "1.1"]) == "0"
    assert volatility(["x", "1"]) is None
