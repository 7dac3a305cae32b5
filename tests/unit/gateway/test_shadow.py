"""Shadow comparison of two v6 answers: tolerance, labels, codes only one side has."""

from __future__ import annotations

from decimal import Decimal

from kurs_gateway.shadow import compare, report

TOL = Decimal("0.0001")


def latest(rates: dict[str, Decimal], base: str = "EUR") -> dict[str, object]:
    return {"result": "success", "base_code": base, "conversion_rates": rates}


def test_within_tolerance_agrees() -> None:
    kurs = latest({"EUR": Decimal(1), "USD": Decimal("1.0876")})
    upstream = latest({"EUR": Decimal(1), "USD": Decimal("1.08765")})  # 4.6e-5 apart
    assert compare("/v6/k/latest/EUR", kurs, upstream, TOL) == ([], 0)


def test_beyond_tolerance_diverges_and_missing_codes_are_counted_apart() -> None:
    kurs = latest({"EUR": Decimal(1), "USD": Decimal("1.0876"), "GBP": Decimal("0.85")})
    upstream = latest(
        {"EUR": Decimal(1), "USD": Decimal("1.0876"), "GBP": Decimal("0.90"), "XAU": Decimal(1)}
    )
    found, missing = compare("/p", kurs, upstream, TOL)
    assert [(d.field, d.kurs, d.upstream, d.relative) for d in found] == [
        ("conversion_rates.GBP", "0.85", "0.90", "0.0555556")
    ]
    assert missing == 1


def test_labels_and_figures() -> None:
    kurs = {"result": "success", "base_code": "USD", "target_code": "EUR", "conversion_rate": Decimal("0.9")}
    upstream = {"result": "error", "error-type": "unsupported-code"}
    fields = [d.field for d in compare("/p", kurs, upstream, TOL)[0]]
    assert fields == ["result", "error-type", "base_code", "target_code"]
    pair = {**kurs, "conversion_result": Decimal("90")}
    off = {**pair, "conversion_result": Decimal("91")}
    assert [d.field for d in compare("/p", pair, off, TOL)[0]] == ["conversion_result"]


def test_unparseable_body_is_a_divergence() -> None:
    found, _ = compare("/p", latest({}), None, TOL)
    assert [d.field for d in found] == ["body"]


def test_report_when_off() -> None:
    assert report(None) == {"enabled": False}
