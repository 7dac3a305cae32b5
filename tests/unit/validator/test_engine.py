"""The engine on hand-made scenarios: normalisation, each anomaly class, holds, quality records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from unit.validator.helpers import (
    NOW,
    business_days,
    engine,
    fixing,
    picked_by,
    reference_series,
    run,
    tick,
    wobble,
)

from kurs_common import money
from kurs_common.series import BLEND
from kurs_validator.model import Confidence

CODES = ["USD", "JPY", "GBP", "CHF", "SEK", "NOK", "PLN", "CZK"]
LEVELS = ["1.1172", "175.68", "0.8338", "0.9194", "10.978", "10.312", "4.4038", "24.353"]


def ecb_days(count: int, source: str = "ecb") -> list[list]:  # type: ignore[type-arg]
    days = business_days(count)
    return [
        [fixing(source, code, value, d) for code, value in zip(CODES, wobble(LEVELS, i), strict=True)]
        for i, d in enumerate(days)
    ]


def test_a_source_own_figure_is_forwarded_as_published() -> None:
    batch = [
        fixing("ecb", "USD", "1.11720000", business_days(1)[0]),
        fixing("ecb", "JPY", "175.680", business_days(1)[0]),
    ]
    (outcome,) = run(engine(), [batch])
    assert {p.currency: p.value for p in outcome.published} == {"USD": "1.11720000", "JPY": "175.680"}
    # The ECB's figures are what goes into the blend (the blend's source, the ECB its contributor).
    assert set(picked_by([outcome]).values()) == {"ecb"}
    assert all(p.source == BLEND and p.sources == ("ecb",) for p in outcome.published)
    assert outcome.accepted == 2


def test_sources_with_other_bases_are_normalised_through_their_own_crosses() -> None:
    day = business_days(1)[0]
    boe = [
        fixing("boe", "JPY", "200", day, base="GBP", hour=15),
        fixing("boe", "EUR", "1.15", day, base="GBP", hour=15),
        fixing("boe", "USD", "1.3", day, base="GBP", hour=15),
    ]
    fed = [
        fixing("fed", "JPY", "150", day, base="USD", hour=17),
        fixing("fed", "EUR", "0.9", day, base="USD", hour=17),
    ]
    (outcome,) = run(engine(), [[*boe, *fed]])
    assert not outcome.rejections
    jpy = {c.source: c for c in [q for q in outcome.quality if q.currency == "JPY"][-1].contributors}
    # JPY per EUR from the BoE: (JPY per GBP) / (EUR per GBP); compared per USD: 200 / 1.3.
    boe_jpy = jpy["boe"]
    # Forwarded with 28 significant digits (the rates service rounds once, when it answers).
    assert _close(boe_jpy.value, Decimal(200) / Decimal("1.15"))
    assert boe_jpy.comparison == money.format_decimal(money.round_significant(Decimal(200) / Decimal("1.3")))
    # The Fed's JPY per EUR: (JPY per USD) / (EUR per USD).
    fed_jpy = jpy["fed"]
    assert fed_jpy.comparison == "150"
    assert _close(fed_jpy.value, Decimal(150) / Decimal("0.9"))


def _close(forwarded: str, exact: Decimal) -> bool:
    """A computed per-EUR figure: more than 20 significant digits, within 1e-25 of the exact ratio."""
    digits = len(forwarded.replace(".", "").lstrip("0"))
    return digits > 20 and abs(Decimal(forwarded) / exact - 1) < Decimal("1e-25")


def test_a_live_tick_uses_the_cross_of_an_earlier_batch_within_the_tolerance() -> None:
    t = NOW - dt.timedelta(minutes=1)
    _first, second = run(
        engine(),
        [
            [tick("kraken", "EUR", "USD", "1.10", t)],
            [tick("kraken", "USD", "JPY", "150", t + dt.timedelta(seconds=2))],
        ],
    )
    assert not second.rejections
    (jpy,) = second.published
    assert jpy.currency == "JPY"
    assert jpy.value == "165"
    # Beyond the tolerance there is no cross of the same instant: the latest consensus USD/EUR is used.
    (third,) = run(engine(), [[tick("kraken", "USD", "JPY", "150", t)]])
    assert [r.reason for r in third.rejections] == ["no_pivot_cross"]


def test_a_one_day_spike_is_held_then_rejected() -> None:
    batches = ecb_days(30)
    spiked = batches[25][3]
    batches[25][3] = dataclasses.replace(
        spiked, value=money.format_decimal(Decimal(spiked.value) * Decimal("1.1"))
    )
    outcomes = run(engine(), batches)
    assert outcomes[25].held == 1
    assert not outcomes[25].rejections
    assert all(p.currency != "CHF" for p in outcomes[25].published)
    # Rejected once the next day's figure came back; recorded as an anomaly of that day.
    assert not outcomes[26].rejections  # the rejection belongs to an earlier request
    (anomaly,) = outcomes[26].anomalies
    assert (anomaly.reason, anomaly.currency, anomaly.observation.day) == ("jump", "CHF", spiked.day)
    series = reference_series(outcomes)
    assert ("CHF", spiked.day) not in series
    assert sum(len(o.published) for o in outcomes) == 30 * len(CODES) - 1


def test_a_lasting_move_is_published_once_confirmed() -> None:
    batches = ecb_days(30)
    for i in range(25, 30):  # CHF moves 15% down and stays (think 2015-01-15)
        obs = batches[i][3]
        batches[i][3] = dataclasses.replace(
            obs, value=money.format_decimal(Decimal(obs.value) * Decimal("0.85"))
        )
    outcomes = run(engine(), batches)
    assert all(not o.rejections and not o.anomalies for o in outcomes)
    assert outcomes[25].held == 1
    late = [p for p in outcomes[26].published if p.currency == "CHF"]
    assert [p.day.isoformat() for p in late] == [batches[25][3].day, batches[26][3].day]
    assert len(reference_series(outcomes)) == 30 * len(CODES)


def test_a_jump_that_other_sources_see_is_published_at_once() -> None:
    ecb = ecb_days(30)
    mirror = ecb_days(30, source="mirror")
    for batches in (ecb, mirror):
        obs = batches[25][3]
        batches[25][3] = dataclasses.replace(
            obs, value=money.format_decimal(Decimal(obs.value) * Decimal("0.85"))
        )
    outcomes = run(engine(), [e + m for e, m in zip(ecb, mirror, strict=True)])
    assert outcomes[25].held == 0
    assert not outcomes[25].rejections
    assert ("CHF", ecb[25][3].day) in reference_series(outcomes[:26])


def test_a_stuck_publication_is_rejected() -> None:
    batches = ecb_days(12)
    batches[10] = [
        dataclasses.replace(o, value=p.value) for o, p in zip(batches[10], batches[9], strict=True)
    ]
    outcomes = run(engine(), batches)
    assert {r.reason for r in outcomes[10].rejections} == {"stuck"}
    assert len(outcomes[10].rejections) == len(CODES)
    assert not outcomes[11].rejections


def test_pegs_are_enforced() -> None:
    day = business_days(1)[0]
    batch = [
        fixing("fed", "EUR", "0.9", day, base="USD"),
        fixing("fed", "SAR", "0.41", day, base="USD"),
        fixing("fed", "AED", "3.6725", day, base="USD"),
        fixing("fed", "HKD", "7.80", day, base="USD"),
        fixing("ecb", "DKK", "7.9", day),
        fixing("ecb", "XOF", "655.957", day),
    ]
    (outcome,) = run(engine(), [batch])
    found = sorted((batch[r.index].quote, r.reason) for r in outcome.rejections)
    assert found == [("DKK", "peg_break"), ("SAR", "peg_break")]
    assert {a.currency: a.expected for a in outcome.anomalies} == {"SAR": "3.75", "DKK": "7.46038"}
    assert {p.currency for p in outcome.published} == {"USD", "AED", "HKD", "XOF"}
    assert outcome.accepted == 4


def test_an_outlier_among_three_sources_is_excluded_and_listed() -> None:
    day = business_days(1)[0]
    batch = [
        fixing("ecb", "USD", "1.1172", day),
        fixing("boe", "USD", "1.1180", day, hour=15),
        fixing("rba", "USD", "1.2172", day, hour=6),
    ]
    (outcome,) = run(engine(), [batch])
    assert [(batch[r.index].source, r.reason) for r in outcome.rejections] == [("rba", "outlier")]
    record = outcome.quality[-1]
    assert record.value == "1.1172"
    assert record.source == "ecb"
    assert [c.source for c in record.contributors] == ["boe", "ecb"]
    assert [(c.source, c.reason) for c in record.excluded] == [("rba", "outlier")]
    assert record.confidence is Confidence.MEDIUM
    assert outcome.published[-1].sources == ("boe", "ecb")


def test_two_sources_that_disagree_are_settled_by_history() -> None:
    days = business_days(6)
    batches = [[fixing("ecb", "USD", "1.10", d), fixing("boe", "USD", "1.10", d, hour=15)] for d in days[:-1]]
    batches.append([fixing("ecb", "USD", "1.10", days[-1]), fixing("boe", "USD", "1.17", days[-1], hour=15)])
    outcomes = run(engine(priority={}), batches)
    assert [(r.reason) for r in outcomes[-1].rejections] == ["outlier"]
    assert outcomes[-1].anomalies[0].observation.source == "boe"


def test_confidence_grades() -> None:
    days = business_days(8)
    one = run(engine(), [[fixing("ecb", "USD", "1.10", days[0])]])[0].quality[0]
    assert one.confidence is Confidence.UNVERIFIED
    history = run(
        engine(),
        [[fixing("ecb", "USD", v, d)] for v, d in zip(["1.10", "1.101", "1.099"] * 3, days, strict=False)],
    )
    assert history[-1].quality[0].confidence is Confidence.LOW
    three = run(engine(), [[fixing(s, "USD", "1.10", days[0]) for s in ("ecb", "boe", "fed")]])[0].quality[-1]
    assert three.confidence is Confidence.HIGH
    assert three.spread == "0"
    assert len(three.contributors) == 3


def test_a_resubmitted_batch_adds_nothing() -> None:
    batches = ecb_days(5)
    eng = engine()
    first = run(eng, batches)
    again = run(eng, batches)
    assert sum(o.accepted for o in again) == sum(len(b) for b in batches)
    assert sum(o.duplicates for o in again) == sum(len(b) for b in batches)
    assert not any(o.published or o.rejections for o in again)
    assert sum(len(o.published) for o in first) == sum(len(b) for b in batches)


def test_a_stale_source_is_flagged_once() -> None:
    eng = engine()
    run(eng, [[fixing("ecb", "USD", "1.10", dt.date(2026, 11, 10))]])
    (stale,) = eng.check_stale(NOW)
    assert (stale.reason, stale.observation.source) == ("stale_source", "ecb")
    assert eng.check_stale(NOW) == []
    (state,) = eng.source_states(NOW)
    assert state.stale
    assert state.accepted == 1
    assert not any(s.stale for s in eng.source_states(dt.datetime(2026, 11, 12, tzinfo=dt.UTC)))


def test_live_ticks_from_several_sources() -> None:
    t = NOW - dt.timedelta(seconds=30)
    ticks = [
        tick("kraken", "EUR", "USD", "1.1000", t),
        tick("bitstamp", "EUR", "USD", "1.1002", t + dt.timedelta(seconds=1)),
        tick("coinbase", "EUR", "USD", "1.1800", t + dt.timedelta(seconds=2)),
        tick("gemini", "EUR", "USD", "1.1001", t + dt.timedelta(seconds=3)),
    ]
    (outcome,) = run(engine(), [ticks])
    assert [(ticks[r.index].source, r.reason) for r in outcome.rejections] == [("coinbase", "outlier")]
    assert outcome.accepted == 3
    assert all(Decimal("1.1") <= Decimal(p.value) <= Decimal("1.1002") for p in outcome.published)


def test_late_evidence_excludes_a_fixing_published_earlier() -> None:
    day = business_days(1)[0]
    eng = engine()
    (first,) = run(eng, [[fixing("ecb", "USD", "1.2172", day)]])
    assert [p.value for p in first.published] == ["1.2172"]
    (second,) = run(
        eng, [[fixing("boe", "USD", "1.1172", day, hour=15), fixing("fed", "USD", "1.1175", day, hour=17)]]
    )
    assert not second.rejections  # the new fixings are fine; the earlier one is the outlier
    (late,) = second.anomalies
    late_figure = (late.observation.source, late.currency, late.observation.value)
    assert (late.reason, *late_figure) == ("outlier", "ecb", "USD", "1.2172")
    record = second.quality[-1]
    assert [c.source for c in record.contributors] == ["boe", "fed"]
    assert [(c.source, c.reason) for c in record.excluded] == [("ecb", "outlier")]
    assert Decimal(second.published[-1].value) in (Decimal("1.1172"), Decimal("1.1175"))
