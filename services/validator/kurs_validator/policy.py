"""Thresholds of the validation rules, and the peg table (data only; docs/validation.md explains them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from kurs_common.observation import LIVE, REFERENCE

PIVOT = "EUR"  # storage pivot: what is forwarded to the rates service is quoted per one EUR
COMPARISON = "USD"  # comparison pivot: every source is compared in units per one USD


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """The rules of one kind of observation (daily reference fixings or live ticks)."""

    # A peer contribution counts only when at most this old relative to the figure judged.
    max_age: dt.timedelta
    # Weights halve every `half_life` of age.
    half_life: dt.timedelta
    # Outlier rule: relative deviation from the median above max(mad_k x 1.4826 x MAD, mad_floor).
    mad_k: Decimal
    mad_floor: Decimal
    # Jump rule against the source's own series: |v/prev - 1| above max(jump_k x vol, jump_floor),
    # vol = 1.4826 x median |return| over the last `history_window` returns (at least `min_history`).
    jump_k: Decimal
    jump_floor: Decimal
    history_window: int
    min_history: int
    # An earlier figure further back than this is not "recent history" (series restarts).
    history_gap: dt.timedelta
    # A jump is a one-off spike when the next figure comes back within this fraction of the jump.
    revert_fraction: Decimal
    # A source is stale when its newest figure is older than this (wall clock).
    stale_after: dt.timedelta
    # Crosses of the same source count as "the same observation time" within this tolerance.
    cross_tolerance: dt.timedelta
    # Relative slack added to a peg's band (a cross computed from two separately rounded figures).
    peg_slack: Decimal
    # Series kept per (source, pair) for the live kind (the reference kind keeps its full history).
    max_series: int


@dataclass(frozen=True, slots=True)
class Peg:
    currency: str
    anchor: str  # "USD" or "EUR": the peg is expressed in units of `currency` per one `anchor`
    low: Decimal
    high: Decimal
    since: dt.date
    note: str


PEGS: tuple[Peg, ...] = (
    Peg(
        "AED", "USD", Decimal("3.6725"), Decimal("3.6725"), dt.date(1997, 11, 1), "UAE dirham peg 3.6725/USD"
    ),
    Peg("SAR", "USD", Decimal("3.75"), Decimal("3.75"), dt.date(1986, 6, 1), "Saudi riyal peg 3.75/USD"),
    Peg("HKD", "USD", Decimal("7.75"), Decimal("7.85"), dt.date(2005, 5, 18), "HKD convertibility band"),
    Peg(
        "DKK",
        "EUR",
        Decimal("7.46038") * Decimal("0.9775"),
        Decimal("7.46038") * Decimal("1.0225"),
        dt.date(1999, 1, 1),
        "DKK in ERM II, 7.46038/EUR +-2.25%",
    ),
    Peg(
        "XOF",
        "EUR",
        Decimal("655.957"),
        Decimal("655.957"),
        dt.date(1999, 1, 1),
        "CFA franc BCEAO 655.957/EUR",
    ),
    Peg(
        "XAF",
        "EUR",
        Decimal("655.957"),
        Decimal("655.957"),
        dt.date(1999, 1, 1),
        "CFA franc BEAC 655.957/EUR",
    ),
)


def _default_kinds() -> dict[str, KindPolicy]:
    return {
        REFERENCE: KindPolicy(
            max_age=dt.timedelta(days=4),
            half_life=dt.timedelta(days=1),
            mad_k=Decimal(5),
            mad_floor=Decimal("0.015"),
            jump_k=Decimal(10),
            jump_floor=Decimal("0.02"),
            history_window=20,
            min_history=5,
            history_gap=dt.timedelta(days=10),
            revert_fraction=Decimal("0.3"),
            stale_after=dt.timedelta(days=5),
            cross_tolerance=dt.timedelta(hours=12),
            peg_slack=Decimal("0.01"),
            max_series=0,
        ),
        LIVE: KindPolicy(
            max_age=dt.timedelta(seconds=120),
            half_life=dt.timedelta(seconds=30),
            mad_k=Decimal(5),
            mad_floor=Decimal("0.005"),
            jump_k=Decimal(10),
            jump_floor=Decimal("0.01"),
            history_window=50,
            min_history=10,
            history_gap=dt.timedelta(hours=1),
            revert_fraction=Decimal("0.3"),
            stale_after=dt.timedelta(minutes=5),
            cross_tolerance=dt.timedelta(seconds=5),
            peg_slack=Decimal("0.002"),
            max_series=2_000,
        ),
    }


@dataclass(frozen=True, slots=True)
class Policy:
    kinds: dict[str, KindPolicy] = field(default_factory=_default_kinds)
    # Source priority (weight factor) in the weighted median; sources not listed weigh 1.
    priority: dict[str, float] = field(default_factory=lambda: {"ecb": 3.0})
    pegs: tuple[Peg, ...] = PEGS
    # Inverted quote: v x expected within this of 1 (and the figure far from expected).
    inversion_tolerance: Decimal = Decimal("0.05")
    # Decimal shift: v / expected within this of 10^n, n != 0.
    shift_tolerance: Decimal = Decimal("0.2")
    # Stuck publication: at least this share of at least `stuck_min_pairs` figures unchanged, counting
    # only the pairs that moved at their previous publication.
    stuck_share: Decimal = Decimal("0.9")
    stuck_min_pairs: int = 5
    # Clock skew tolerated before a figure counts as future-dated.
    max_clock_skew: dt.timedelta = dt.timedelta(minutes=5)

    def weight_of(self, source: str) -> float:
        return self.priority.get(source, 1.0)
