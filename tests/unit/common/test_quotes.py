from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kurs_common.quotes import rebase_entries


@dataclass(frozen=True)
class E:
    value: str
    day: dt.date
    observed_at: dt.datetime
    sources: tuple[str, ...]
    replay: bool = False


D1 = dt.date(2026, 10, 29)
D2 = dt.date(2026, 10, 30)
T1 = dt.datetime(2026, 10, 29, 15, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 10, 30, 15, tzinfo=dt.UTC)


def test_cross_rate_takes_provenance_of_both_legs() -> None:
    entries = {"USD": E("1.1172", D2, T2, ("ecb",)), "GBP": E("0.8338", D1, T1, ("boe",), replay=True)}
    (gbp,) = rebase_entries(entries, "EUR", "USD", ["GBP"])
    assert gbp.value == "0.746330111"
    assert gbp.sources == ("boe", "ecb")
    assert gbp.day == D2
    assert gbp.replay is True


def test_pivot_base_keeps_published_strings() -> None:
    entries = {"USD": E("1.11720", D2, T2, ("ecb",))}
    rates = rebase_entries(entries, "EUR", "EUR", None)
    assert [(r.currency, r.value, r.sources) for r in rates] == [("USD", "1.11720", ("ecb",))]
