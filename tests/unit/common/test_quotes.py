from __future__ import annotations

import datetime as dt

from kurs_common.quotes import from_published, published_days, rebase_entries
from kurs_common.rate import UNOBSERVED, Rate, RateKind


def E(
    value: str, day: dt.date, observed_at: dt.datetime, sources: tuple[str, ...], replay: bool = False
) -> Rate:
    return Rate("blend", RateKind.REFERENCE, "", value, day, observed_at, sources, replay)


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
    assert rates[0].base == "EUR"


def test_the_pivot_against_itself_has_no_observation_instant() -> None:
    entries = {"USD": E("1.1172", D2, T2, ("ecb",))}
    (eur,) = rebase_entries(entries, "EUR", "EUR", ["EUR"])
    assert (eur.value, eur.day, eur.observed_at, eur.sources) == ("1", D2, UNOBSERVED, ())


def test_a_cross_keeps_the_newer_legs_source_and_kind() -> None:
    tick = Rate("kraken", RateKind.LIVE, "USD", "1.1180", D2, T2, ("kraken",))
    entries = {"USD": tick, "GBP": E("0.8338", D1, T1, ("boe",))}
    (usd,) = rebase_entries(entries, "EUR", "GBP", ["USD"])
    assert (usd.source, usd.kind, usd.base, usd.observed_at) == ("kraken", RateKind.LIVE, "GBP", T2)


# A publisher's latest answer: GBP-based figures, JPY a day older than the rest (a holiday).
BOE = {("GBP", "USD"): ("1.2500", D2), ("GBP", "JPY"): ("190.00", D1), ("GBP", "EUR"): ("1.2000", D2)}


def test_published_days_give_each_answered_figure_its_own_date() -> None:
    figures = [(b, q, v) for (b, q), (v, _) in BOE.items()]
    days = {pair: day for pair, (_, day) in BOE.items()}
    # In the publisher's own base: each figure's own date.
    own = from_published(figures, "GBP", None)
    assert published_days(days, "GBP", own) == {"EUR": D2, "JPY": D1, "USD": D2}
    # Another base: a cross of two figures carries the newer date; the base itself its own.
    usd = from_published(figures, "USD", None)
    assert published_days(days, "USD", usd) == {"EUR": D2, "GBP": D2, "JPY": D2}
    jpy = published_days(days, "JPY", from_published(figures, "JPY", ["GBP", "USD"]))
    assert jpy == {"GBP": D1, "USD": D2}
