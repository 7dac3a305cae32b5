"""kurs_common.rate: the one shape of a rate with its provenance."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from kurs_common.rate import UNOBSERVED, Rate, RateKind, observed, rate_kind

AT = dt.datetime(2026, 10, 30, 15, tzinfo=dt.UTC)


def test_a_rate_is_frozen_and_slotted_with_the_pivot_as_default_base() -> None:
    rate = Rate("ecb", RateKind.REFERENCE, "USD", "1.1172", AT.date(), AT, ("ecb",))
    assert (rate.base, rate.flag, rate.replay) == ("EUR", "", False)
    assert not hasattr(rate, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rate.value = "1"  # type: ignore[misc]


def test_kinds_and_the_unobserved_instant() -> None:
    assert rate_kind("reference") is RateKind.REFERENCE
    assert rate_kind("live") is RateKind.LIVE
    with pytest.raises(ValueError, match="unknown rate kind"):
        rate_kind("weekly")
    assert observed(UNOBSERVED) is None
    assert observed(AT) == AT
    assert dt.datetime.fromtimestamp(0, dt.UTC) == UNOBSERVED  # what an unset Timestamp decodes to
