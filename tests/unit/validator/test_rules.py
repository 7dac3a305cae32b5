"""Rules on one observation alone, and the deviation classes (property-based)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit.validator.helpers import NOW, business_days, engine, fixing, run

from kurs_common import money
from kurs_validator.policy import Policy
from kurs_validator.rules import Reject, check_static, classify

POLICY = Policy()
BASE = fixing("ecb", "USD", "1.1172", dt.date(2026, 11, 20))


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"value": "0"}, "non_positive", "value"),
        ({"value": "-1.5"}, "non_positive", "value"),
        ({"value": "NaN"}, "not_a_number", "value"),
        ({"value": "Infinity"}, "not_a_number", "value"),
        ({"value": "1e3"}, "not_a_number", "value"),
        ({"value": "abc"}, "not_a_number", "value"),
        ({"value": ""}, "not_a_number", "value"),
        ({"quote": "XYZ"}, "unknown_currency", "quote"),
        ({"quote": "HRK", "day": "2023-01-02"}, "retired_currency", "quote"),
        ({"quote": "EUR"}, "same_currency", "quote"),
        ({"day": "2026-11-28"}, "future_dated", "date"),
        ({"observed_at": NOW + dt.timedelta(hours=1)}, "future_dated", "observed_at"),
        ({"observed_at": None}, "missing_observed_at", "observed_at"),
        ({"day": "2026-02-30"}, "bad_date", "date"),
        ({"source": ""}, "missing_source", "source"),
        ({"kind": ""}, "missing_kind", "kind"),
    ],
)
def test_static_rules(change: dict[str, object], reason: str, field: str) -> None:
    obs = dataclasses.replace(BASE, **change)  # type: ignore[arg-type]
    with pytest.raises(Reject) as caught:
        check_static(obs, NOW, POLICY.max_clock_skew)
    assert (caught.value.reason, caught.value.field) == (reason, field)


def test_a_retired_code_is_fine_before_its_end_date() -> None:
    obs = dataclasses.replace(BASE, quote="HRK", value="7.5345", day="2022-12-30")
    assert check_static(obs, NOW, POLICY.max_clock_skew) == (dt.date(2022, 12, 30), Decimal("7.5345"))


def test_every_static_rejection_is_recorded_as_an_anomaly() -> None:
    bad = [dataclasses.replace(BASE, value="0"), dataclasses.replace(BASE, quote="XYZ")]
    (outcome,) = run(engine(), [bad])
    assert [(r.index, r.reason, r.field) for r in outcome.rejections] == [
        (0, "non_positive", "value"),
        (1, "unknown_currency", "quote"),
    ]
    assert [a.reason for a in outcome.anomalies] == ["non_positive", "unknown_currency"]
    assert not outcome.published


_levels = st.decimals(min_value=Decimal("0.0005"), max_value=Decimal("50000"), places=4).filter(
    lambda v: not Decimal("0.8") < v < Decimal("1.25")
)


@settings(max_examples=60, deadline=None)
@given(expected=_levels, noise=st.integers(-20, 20))
def test_classify_catches_inversions(expected: Decimal, noise: int) -> None:
    figure = (1 / expected) * (1 + Decimal(noise) / 10_000)
    assert (
        classify(figure, expected, Decimal("0.02"), POLICY.inversion_tolerance, POLICY.shift_tolerance)
        == "inverted"
    )


@settings(max_examples=60, deadline=None)
@given(expected=_levels, n=st.sampled_from([-4, -3, -2, -1, 1, 2, 3, 4]), noise=st.integers(-20, 20))
def test_classify_catches_decimal_shifts(expected: Decimal, n: int, noise: int) -> None:
    figure = expected * Decimal(10) ** n * (1 + Decimal(noise) / 10_000)
    found = classify(figure, expected, Decimal("0.02"), POLICY.inversion_tolerance, POLICY.shift_tolerance)
    # A shift that happens to equal 1/expected as well (expected ~ 10^(-n/2)) is reported as inverted.
    assert found in ("decimal_shift", "inverted")
    if abs(figure * expected - 1) > POLICY.inversion_tolerance:
        assert found == "decimal_shift"


@settings(max_examples=30, deadline=None)
@given(
    level=_levels,
    corruption=st.sampled_from(["inverted", "x10", "x100", "/10", "/1000"]),
    sources=st.integers(1, 3),
)
def test_inverted_and_shifted_quotes_are_always_caught(level: Decimal, corruption: str, sources: int) -> None:
    """After a week of history, one source's corrupted fixing is rejected, whatever the source count."""
    days = business_days(8)
    batches = []
    for i, d in enumerate(days[:-1]):
        value = money.format_decimal(money.round_significant(level * (1 + Decimal(i % 3 - 1) / 1000), 6))
        batches.append([fixing(f"s{s}", "JPY", value, d) for s in range(sources)])
    clean = level * Decimal("1.001")
    bad = {
        "inverted": 1 / clean,
        "x10": clean * 10,
        "x100": clean * 100,
        "/10": clean / 10,
        "/1000": clean / 1000,
    }[corruption]
    last = [fixing(f"s{s}", "JPY", money.format_decimal(clean), days[-1]) for s in range(1, sources)]
    last.append(fixing("s0", "JPY", money.format_decimal(money.round_significant(bad, 8)), days[-1]))
    outcomes = run(engine(), [*batches, last])
    assert all(not o.rejections for o in outcomes[:-1])
    (rejection,) = outcomes[-1].rejections
    assert rejection.index == len(last) - 1
    assert rejection.reason in ("inverted", "decimal_shift")
    if corruption == "inverted":
        assert rejection.reason == "inverted"
