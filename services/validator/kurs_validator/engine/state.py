"""The engine's in-memory state (docs/validation.md § Storage and retention, last paragraph).

Each source's own series of accepted figures per pair (the full history of reference fixings, the
last `KindPolicy.max_series` live ticks), each source's crosses of its last 32 observation times,
the latest figure of every source per currency, 8 dates of reference slots per currency, the last
published consensus per currency and per-(source, kind) counters. Everything is rebuilt from the
observations themselves; slots dataclasses, interned source strings and integer microsecond times
keep it compact and fast.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

from kurs_common.observation import Observation
from kurs_validator import consensus
from kurs_validator.consensus import Point
from kurs_validator.engine.exactness import text
from kurs_validator.model import Contribution
from kurs_validator.policy import PIVOT, Peg, Policy

CROSS_TIMES = 32  # crosses kept per source
SLOTS = 8  # reference slots (dates) kept per currency


@dataclass(slots=True)
class Item:
    """One observation after normalisation."""

    index: int
    batch: int
    obs: Observation
    time: int
    day: dt.date
    value: Decimal  # as published
    subject: str  # the currency it speaks about
    sign: int  # comparison = value**sign x factor
    factor: Decimal | None
    comparison: Decimal | None  # units of subject per USD (subject USD: USD per EUR)
    per_eur_text: str
    history_checked: bool = False
    peg_checked: bool = False
    # Normalised through its source's cross of a nearby day (no cross of its own day): its
    # per-EUR and comparison values carry that cross's movement, so no peg judges it.
    nearby_cross: bool = False


@dataclass(slots=True)
class Held:
    """A jump waiting for the source's next figure of the same pair."""

    item: Item
    prev: Decimal
    deviation: Decimal
    threshold: Decimal


@dataclass(slots=True)
class Series:
    """One source's accepted figures of one pair, in time order."""

    times: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    values: list[Decimal] = field(default_factory=list)
    rets: list[Decimal] = field(default_factory=list)  # |v[i]/v[i-1] - 1|; GAP after a gap
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)  # time -> (text, reason)
    pending: Held | None = None


@dataclass(slots=True)
class Contrib:
    """An accepted figure as a contribution to its currency's consensus."""

    source: str
    time: int
    observed_at: dt.datetime
    day: dt.date
    comparison: Decimal | None
    per_eur_text: str
    replay: bool
    comparison_text: str = ""
    direct: bool = False  # the publisher's own figure against EUR (not derived through a cross)


@dataclass(slots=True)
class Slot:
    """A currency's reference fixings of one date."""

    contribs: dict[str, Contrib] = field(default_factory=dict)
    excluded: dict[str, Contribution] = field(default_factory=dict)
    forwarded: tuple[str, str] | None = None


@dataclass(slots=True)
class Stats:
    """A (source, kind)'s newest observation and counters."""

    last_observed_at: dt.datetime
    last_day: dt.date
    accepted: int = 0
    rejected: int = 0
    stale: bool = False


@dataclass(slots=True)
class Evaluation:
    """The contributions a figure is judged with, and the verdict (None: fewer than 3 points)."""

    points: list[Point]
    contribs: dict[str, Contrib]
    verdict: consensus.Verdict | None
    stale: list[Contrib]


@dataclass(slots=True)
class State:
    policy: Policy
    pegs: dict[str, Peg]
    series: dict[tuple[str, str, str, str], Series] = field(default_factory=dict)
    crosses: dict[tuple[str, str], OrderedDict[int, dict[str, Decimal]]] = field(default_factory=dict)
    latest: dict[tuple[str, str], dict[str, Contrib]] = field(default_factory=dict)
    slots: dict[str, OrderedDict[dt.date, Slot]] = field(default_factory=dict)
    consensus: dict[tuple[str, str], tuple[int, Decimal]] = field(default_factory=dict)
    stats: dict[tuple[str, str], Stats] = field(default_factory=dict)
    batch: int = 0
    # Reference slots whose consensus is to be recomputed (fixings that became comparable).
    slots_to_republish: set[tuple[str, dt.date]] = field(default_factory=set)


def new_state(policy: Policy) -> State:
    return State(policy, {p.currency: p for p in policy.pegs})


def stats_for(st: State, obs: Observation, day: dt.date) -> Stats:
    assert obs.observed_at is not None
    key = (obs.source, obs.kind)
    stats = st.stats.get(key)
    if stats is None:
        stats = st.stats[key] = Stats(obs.observed_at, day)
    elif obs.observed_at > stats.last_observed_at:
        stats.last_observed_at = obs.observed_at
        stats.last_day = day
    return stats


def slot_of(st: State, subject: str, day: dt.date) -> Slot:
    """The slot of a currency's fixings of one date (the oldest of more than 8 dates is dropped)."""
    slots = st.slots.setdefault(subject, OrderedDict())
    slot = slots.get(day)
    if slot is None:
        slot = slots[day] = Slot()
        if len(slots) > SLOTS:
            slots.popitem(last=False)
            slot = slots.get(day, slot)
    return slot


def contrib_of(item: Item) -> Contrib:
    assert item.obs.observed_at is not None
    return Contrib(
        item.obs.source,
        item.time,
        item.obs.observed_at,
        item.day,
        item.comparison,
        item.per_eur_text,
        item.obs.replay,
        text(item.comparison) if item.comparison is not None else "",
        PIVOT in (item.obs.base, item.obs.quote),
    )
