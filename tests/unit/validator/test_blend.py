"""Consensus in the engine (kurs_validator.engine.blend): the published fixing of a date is the
highest-priority contributor's when it is within the consensus tolerance."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from unit.validator.helpers import business_days, engine, fixing, picked_by, reference_series, run

from kurs_common import money
from kurs_validator import consensus
from kurs_validator.engine.blend import prioritised
from kurs_validator.engine.state import Contrib, new_state
from kurs_validator.policy import Policy

REFERENCE = Policy().kinds["reference"]
DAY = business_days(1)[0]


def _usd(value: int) -> str:
    """EUR/USD 1.1000 moved by `value` ten-thousandths."""
    return money.format_decimal(Decimal("1.1000") + Decimal(value) / 10_000)


def test_the_ecb_is_published_with_more_than_three_agreeing_contributors() -> None:
    """Three figures just below the ECB's carry half the weight (3 of 6): the weighted median alone
    would publish the nearest of them; the ECB's figure, within the tolerance, is published."""
    batch = [
        fixing("ecb", "USD", "1.1000", DAY),
        *(
            fixing(s, "USD", v, DAY, hour=15)
            for s, v in (("boe", "1.0990"), ("fed", "1.0995"), ("rba", "1.0999"))
        ),
    ]
    (outcome,) = run(engine(), [batch])
    published = reference_series([outcome])[("USD", DAY.isoformat())]
    assert (picked_by([outcome])[("USD", DAY.isoformat())], published.value) == ("ecb", "1.1000")
    assert published.sources == ("boe", "ecb", "fed", "rba")
    record = outcome.quality[-1]
    assert (record.source, record.value, len(record.contributors)) == ("ecb", "1.1000", 4)


def test_equal_priorities_keep_the_weighted_median() -> None:
    batch = [fixing(s, "USD", v, DAY) for s, v in (("a", "1.0990"), ("b", "1.0995"), ("c", "1.1000"))]
    (outcome,) = run(engine(priority={}), [batch])
    assert picked_by([outcome])[("USD", DAY.isoformat())] == "b"


def _contrib(source: str, comparison: str) -> Contrib:
    at = dt.datetime.combine(DAY, dt.time(14), tzinfo=dt.UTC)
    return Contrib(source, 0, at, DAY, Decimal(comparison), comparison, False, comparison)


def test_a_top_priority_figure_outside_the_tolerance_gives_way_to_the_weighted_median() -> None:
    st_ = new_state(Policy())
    candidates = [_contrib("ecb", "1.2"), *(_contrib(s, "1.1") for s in ("a", "b", "c"))]
    weights = {"ecb": 3.0, "a": 1.0, "b": 1.0, "c": 1.0}
    points = [consensus.Point(c.source, c.comparison or Decimal(0)) for c in candidates]
    verdict = consensus.judge(points, REFERENCE.mad_k, REFERENCE.mad_floor)
    assert verdict.outliers == {"ecb"}
    # Cumulative weight in (value, source) order: a 1, b 2, c 3 = half of 6.
    assert prioritised(st_, candidates, weights, verdict).source == "c"
    within = consensus.judge(points[1:], REFERENCE.mad_k, REFERENCE.mad_floor)
    assert prioritised(st_, candidates, weights, within).source == "ecb"
    # Two sources sharing the top priority: no single preferred source, the weighted median decides
    # (a 3, b 6 of 7), where the first of the top would be a.
    tied = new_state(Policy(priority={"a": 3.0, "b": 3.0}))
    assert prioritised(tied, candidates[1:], {"a": 3.0, "b": 3.0, "c": 1.0}, within).source == "b"


def _published(batches: list[list]) -> tuple[str, str]:  # type: ignore[type-arg]
    outcomes = run(engine(), batches)
    published = reference_series(outcomes)[("USD", DAY.isoformat())]
    return picked_by(outcomes)[("USD", DAY.isoformat())], published.value


_corrupt = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=4)


@settings(max_examples=60, deadline=None)
@given(
    ecb=st.integers(-40, 40),
    honest=st.lists(st.integers(-40, 40), min_size=2, max_size=6),
    corrupt=st.tuples(_corrupt, _corrupt),
    corrupt_name=st.sampled_from(["aaa", "mmm", "zzz"]),
    late=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_one_corrupted_contributor_never_moves_the_published_fixing(
    ecb: int, honest: list[int], corrupt: tuple[Decimal, Decimal], corrupt_name: str, late: bool, seed: int
) -> None:
    """The ECB and 2-6 other sources agree within the tolerance (±0.4 %); one more source sends any
    figure, in the same batch or a later one: the ECB's figure is published, whatever that one is."""
    agreeing = [fixing("ecb", "USD", _usd(ecb), DAY)]
    agreeing += [fixing(f"h{i}", "USD", _usd(k), DAY, hour=15 + i % 3) for i, k in enumerate(honest)]
    results = []
    for value in corrupt:
        odd = fixing(corrupt_name, "USD", money.format_decimal(value), DAY, hour=16)
        batches = [agreeing[:], [odd]] if late else [[*agreeing, odd]]
        for batch in batches:
            random.Random(seed).shuffle(batch)
        results.append(_published(batches))
    assert results[0] == results[1] == ("ecb", _usd(ecb))
