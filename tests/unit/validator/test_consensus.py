"""The consensus rules, alone and through the engine (property-based)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from unit.validator.helpers import NOW, business_days, engine, fixing, reference_series, run

from kurs_common import money
from kurs_validator import consensus
from kurs_validator.consensus import Point
from kurs_validator.policy import Policy

REFERENCE = Policy().kinds["reference"]
LIVE = Policy().kinds["live"]

_values = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(st.tuples(_values, st.floats(min_value=0.0, max_value=10.0)), min_size=1, max_size=8),
    seed=st.integers(0, 10_000),
)
def test_weighted_median_does_not_depend_on_order(points: list[tuple[Decimal, float]], seed: int) -> None:
    items = [Point(f"s{i}", v, w) for i, (v, w) in enumerate(points)]
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    assert consensus.weighted_median(items) == consensus.weighted_median(shuffled)
    assert (
        consensus.judge(items, REFERENCE.mad_k, REFERENCE.mad_floor).outliers
        == consensus.judge(shuffled, REFERENCE.mad_k, REFERENCE.mad_floor).outliers
    )


def test_four_identical_and_one_a_percent_off() -> None:
    """MAD is 0 here: the floor decides. Live ticks of one instant should agree within 0.5%; daily
    fixings taken at different hours legitimately differ by 1%."""
    points = [Point(f"s{i}", Decimal("1.1000")) for i in range(4)] + [Point("off", Decimal("1.1110"))]
    live = consensus.judge(points, LIVE.mad_k, LIVE.mad_floor)
    reference = consensus.judge(points, REFERENCE.mad_k, REFERENCE.mad_floor)
    assert live.spread == 0
    assert live.outliers == {"off"}
    assert reference.outliers == frozenset()
    # Far enough off, a fixing is an outlier too.
    far = [*points[:4], Point("off", Decimal("1.1300"))]
    assert consensus.judge(far, REFERENCE.mad_k, REFERENCE.mad_floor).outliers == {"off"}


def test_a_constant_set_has_no_outliers() -> None:
    points = [Point(f"s{i}", Decimal("3.75")) for i in range(5)]
    verdict = consensus.judge(points, LIVE.mad_k, LIVE.mad_floor)
    assert verdict.outliers == frozenset()
    assert verdict.spread == 0


@settings(max_examples=40, deadline=None)
@given(
    honest=st.lists(st.integers(-40, 40), min_size=2, max_size=5),
    corrupt=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3),
    corrupt_name=st.sampled_from(["aaa", "mmm", "zzz"]),
    seed=st.integers(0, 10_000),
)
def test_one_corrupted_source_never_moves_the_consensus_beyond_the_honest_spread(
    honest: list[int], corrupt: Decimal, corrupt_name: str, seed: int
) -> None:
    """Three or more sources (at least two honest) publish the same day's EUR/USD fixing."""
    day = business_days(1)[0]
    honest_values = [money.format_decimal(Decimal("1.1000") + Decimal(k) / 10_000) for k in honest]
    batch = [fixing(f"h{i}", "USD", v, day) for i, v in enumerate(honest_values)]
    batch.append(fixing(corrupt_name, "USD", money.format_decimal(corrupt), day))
    random.Random(seed).shuffle(batch)
    (outcome,) = run(engine(priority={}), [batch])
    published = reference_series([outcome])[("USD", day.isoformat())]
    low = min(Decimal(v) for v in honest_values)
    high = max(Decimal(v) for v in honest_values)
    assert low <= Decimal(published.value) <= high


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sources=st.integers(2, 4))
def test_the_engine_does_not_depend_on_source_order(seed: int, sources: int) -> None:
    days = business_days(6)
    rng = random.Random(seed)
    levels = {"USD": Decimal("1.10"), "JPY": Decimal("160.5"), "GBP": Decimal("0.85")}
    batch = []
    for d in days:
        for s in range(sources):
            for code, level in levels.items():
                noise = Decimal(rng.randint(-20, 20)) / 10_000
                batch.append(fixing(f"src{s}", code, money.format_decimal(level * (1 + noise)), d))
    # One wild figure, to have a rejection to compare too.
    batch.append(fixing("src0", "JPY", "16050", days[-1] + dt.timedelta(days=1)))
    shuffled = batch[:]
    rng.shuffle(shuffled)
    first = run(engine(), [batch])[0]
    second = run(engine(), [shuffled])[0]
    assert reference_series([first]) == reference_series([second])
    assert sorted((batch[r.index], r.reason) for r in first.rejections) == sorted(
        (shuffled[r.index], r.reason) for r in second.rejections
    )
    assert first.rejections  # the shifted JPY figure


@settings(max_examples=25, deadline=None)
@given(
    value=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2),
    sources=st.integers(1, 5),
    count=st.integers(2, 30),
    code=st.sampled_from(["USD", "JPY", "DKK", "XOF", "CHF"]),
)
def test_a_constant_honest_set_produces_no_anomalies(
    value: Decimal, sources: int, count: int, code: str
) -> None:
    if code == "DKK":
        value = Decimal("7.46")
    elif code == "XOF":
        value = Decimal("655.957")
    text = money.format_decimal(value)
    days = business_days(count)
    batches = [[fixing(f"s{s}", code, text, d) for s in range(sources)] for d in days]
    outcomes = run(engine(), batches)
    assert all(not o.rejections and not o.anomalies for o in outcomes)
    series = reference_series(outcomes)
    assert {k: p.value for k, p in series.items()} == {(code, d.isoformat()): text for d in days}
    assert dt.datetime.combine(days[-1], dt.time(0), tzinfo=dt.UTC) < NOW
