"""Robust consensus across sources (pure, no I/O).

Values are `Decimal`s in the comparison pivot; weights are plain floats (a priority times an age
decay — they order and count contributions, they never become a published figure).

* `weighted_median` picks one contribution (the first, in ascending (value, source) order, whose
  cumulative weight reaches half the total), so the published figure is always one source's own
  figure and the result does not depend on the order in which sources were seen.
* `judge` is the outlier rule: the centre is the plain (unweighted) median, so one heavily
  prioritised but corrupted source cannot drag the centre towards itself; the spread is the
  median absolute relative deviation (MAD); a contribution is an outlier when its relative
  deviation exceeds max(k x 1.4826 x MAD, floor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

MAD_SCALE = Decimal("1.4826")  # MAD -> standard deviation under normality
_HALF = Decimal("0.5")
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Point:
    key: str  # the source id (unique within one evaluation)
    value: Decimal
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Verdict:
    centre: Decimal
    spread: Decimal  # MAD of the relative deviations
    tolerance: Decimal  # the relative deviation allowed
    outliers: frozenset[str]
    deviations: dict[str, Decimal]


def median(values: Sequence[Decimal]) -> Decimal:
    """Plain median; the mean of the two middle values for an even count."""
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) * _HALF


def weighted_median(points: Sequence[Point]) -> Point:
    """The contribution at the weighted median (order-independent, ties broken by source id)."""
    if not points:
        raise ValueError("weighted median of nothing")
    ordered = sorted(points, key=lambda p: (p.value, p.key))
    total = sum(max(p.weight, 0.0) for p in ordered)
    if total <= 0:
        return ordered[(len(ordered) - 1) // 2]
    half = total / 2
    cumulative = 0.0
    for point in ordered:
        cumulative += max(point.weight, 0.0)
        if cumulative >= half:
            return point
    return ordered[-1]  # pragma: no cover - rounding guard


def relative_deviation(value: Decimal, centre: Decimal) -> Decimal:
    return abs(value / centre - _ONE)


def judge(points: Sequence[Point], mad_k: Decimal, floor: Decimal) -> Verdict:
    """Centre, spread and the outliers among `points` (at least one point)."""
    centre = median([p.value for p in points])
    deviations = {p.key: relative_deviation(p.value, centre) for p in points}
    spread = median(list(deviations.values()))
    tolerance = max(mad_k * MAD_SCALE * spread, floor)
    outliers = frozenset(k for k, d in deviations.items() if d > tolerance)
    return Verdict(centre, spread, tolerance, outliers, deviations)
