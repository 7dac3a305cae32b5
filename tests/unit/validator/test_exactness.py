"""Exactness (kurs_validator.engine.exactness): computed per-EUR figures keep 28 significant digits,
so that a figure re-based by the rates service comes back as its source published it."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from unit.validator.helpers import business_days, engine, fixing, run

from kurs_common import money
from kurs_validator.engine.exactness import PER_EUR_SIGNIFICANT_DIGITS, per_eur, per_eur_inverse, text


def test_per_eur_keeps_28_significant_digits_without_exponent_or_trailing_zeros() -> None:
    assert PER_EUR_SIGNIFICANT_DIGITS == 28
    assert per_eur(Decimal(1) / Decimal(3)) == "0." + "3" * 28
    assert per_eur(Decimal(2) / Decimal(3)) == "0." + "6" * 27 + "7"  # half-even at the 28th digit
    assert per_eur(Decimal("2.50000")) == "2.5"
    assert per_eur(Decimal("1E+3")) == "1000"
    assert per_eur(Decimal("0.000012340")) == "0.00001234"
    assert per_eur_inverse(Decimal("1.1572")) == "0.8641548565502938126512270999"
    assert per_eur_inverse(Decimal("0.8")) == "1.25"
    # The figures shown to people keep 10.
    assert text(Decimal(1) / Decimal(3)) == "0.3333333333"


def _boe(zar: str, eur: str, usd: str = "1.3293") -> dict[str, str]:
    """What the validator forwards (per EUR) for a BoE fixing of ZAR, EUR and USD per GBP."""
    day = business_days(1)[0]
    batch = [
        fixing("boe", code, value, day, base="GBP", hour=15)
        for code, value in (("ZAR", zar), ("EUR", eur), ("USD", usd))
    ]
    (outcome,) = run(engine(), [batch])
    assert not outcome.rejections
    return {p.currency: p.value for p in outcome.published if p.sources == ("boe",)}


def test_a_boe_figure_rebased_to_gbp_comes_back_digit_exact() -> None:
    """ZAR 22.2645 per GBP came back as 22.26449999 when the per-EUR figure had 10 digits."""
    forwarded = _boe("22.2645", "1.1572")
    # Both computed per EUR with 28 significant digits (ZAR through the BoE's own USD and EUR crosses).
    assert all(len(v.replace(".", "").lstrip("0")) >= 25 for v in forwarded.values()), forwarded
    # As the rates service answers GBP -> ZAR and GBP -> EUR: one division, 10 digits.
    assert money.rebase(forwarded, "EUR", "GBP") == {"ZAR": "22.2645", "EUR": "1.1572"}


def test_the_quality_record_shows_the_consensus_with_10_digits() -> None:
    day = business_days(1)[0]
    batch = [
        fixing("boe", code, value, day, base="GBP", hour=15)
        for code, value in (("ZAR", "22.2645"), ("EUR", "1.1572"), ("USD", "1.3293"))
    ]
    (outcome,) = run(engine(), [batch])
    (zar,) = [q for q in outcome.quality if q.currency == "ZAR"]
    assert zar.consensus == "16.74904085"  # ZAR per USD: 22.2645 / 1.3293, 10 digits
    assert zar.contributors[0].comparison == zar.consensus
    assert zar.value == zar.contributors[0].value == _boe("22.2645", "1.1572")["ZAR"]  # as forwarded


_figure = st.integers(10_000, 999_999).map(lambda n: Decimal(n).scaleb(-4))  # 1.0000 .. 99.9999


@settings(max_examples=80, deadline=None)
@given(zar=_figure, eur=st.integers(9_000, 14_000).map(lambda n: Decimal(n).scaleb(-4)))
def test_every_gbp_quoted_figure_comes_back_as_published(zar: Decimal, eur: Decimal) -> None:
    zar_text, eur_text = money.format_decimal(zar), money.format_decimal(eur)
    forwarded = _boe(zar_text, eur_text)
    assert money.rebase(forwarded, "EUR", "GBP") == {"ZAR": zar_text, "EUR": eur_text}
