"""Normalisation (docs/validation.md § Normalisation): subject, comparison value, per-EUR value.

Every observation speaks about one subject currency. Its comparison value is in units per USD,
through the same source's own cross at the same observation time; its storage value is per EUR
(the published string when the source quotes per EUR). Crosses are kept per source for its last
`state.CROSS_TIMES` observation times and matched within the kind's `cross_tolerance`.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from decimal import Decimal

from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_validator.engine.exactness import MICRO, ONE, per_eur, per_eur_inverse, text
from kurs_validator.engine.state import CROSS_TIMES, Item, State
from kurs_validator.policy import COMPARISON, PIVOT, KindPolicy
from kurs_validator.rules import Reject


def cross_rank(obs: Observation) -> int:
    """EUR/USD first, then USD pairs, then EUR pairs: a source's own crosses before the figures
    that need them (a BTC/USD tick is expressed per EUR through the same poll's EUR/USD)."""
    pair = (obs.base, obs.quote)
    if COMPARISON in pair and PIVOT in pair:
        return 0
    return 1 if COMPARISON in pair else 2 if PIVOT in pair else 3


def no_cross(obs: Observation) -> Reject:
    return Reject(
        "no_pivot_cross",
        f"no {PIVOT} or {COMPARISON} cross from {obs.source} near {obs.observed_at} "
        f"to express {obs.base}/{obs.quote} per {PIVOT}",
    )


def normalise(
    st: State, index: int, obs: Observation, day: dt.date, value: Decimal, time: int, pol: KindPolicy
) -> Item:
    """The subject, comparison value and per-EUR text of one observation (raises `no_pivot_cross`)."""
    base, quote = obs.base, obs.quote
    factor: Decimal | None
    nearby: dict[str, Decimal] | None = None  # set when normalised through a nearby day's cross
    if {base, quote} == {PIVOT, COMPARISON}:
        # The pivot cross itself is compared as USD per EUR.
        subject, other = COMPARISON, PIVOT
        sign, factor = (1 if base == PIVOT else -1), ONE
    else:
        if base == PIVOT or (base == COMPARISON and quote != PIVOT):
            subject, other = quote, base
        elif quote in (PIVOT, COMPARISON):
            subject, other = base, quote
        else:
            subject, other = quote, base
            known = cross_table(st, obs.source, obs.kind, time, pol)
            if obs.kind == REFERENCE and (known is None or (quote not in known and base not in known)):
                known = nearby_cross(st, obs.source, time, pol, quote) or known
            if known is not None and quote in known and base not in known:
                # Quoted in the source's home currency (BoC AUD/CAD, CNB USD/CZK, NBP THB/PLN, ...):
                # the base is what is priced, through the source's own cross for its home currency.
                subject, other = base, quote
        sign = 1 if quote == subject else -1
        if other == COMPARISON:
            factor = ONE
        else:
            table = cross_table(st, obs.source, obs.kind, time, pol)
            factor = table.get(other) if table is not None else None
            if factor is None and other == PIVOT and obs.kind == LIVE:
                # A market with no USD pair of its own (Binance quotes in USDT): its EUR tick is
                # compared through the live consensus EUR/USD of the other sources, when fresh.
                # (Fixings wait for their own source's cross instead: see kinds.settle.)
                usd_per_eur = consensus_usd_per_eur(st, obs.kind, time, pol)
                factor = ONE / usd_per_eur if usd_per_eur is not None else None
            if factor is None and obs.kind == REFERENCE and PIVOT not in (base, quote):
                # No cross of its own on this date (NBP's weekly table B without table A of the
                # day): the source's own nearest cross within max_age stands in. (A figure per
                # EUR needs none to be stored; it waits for its own day's cross to be compared.)
                nearby = nearby_cross(st, obs.source, time, pol, other)
                factor = nearby.get(other) if nearby is not None else None
    comparison = None
    if factor is not None:
        comparison = value * factor if sign == 1 else factor / value
    if base == PIVOT:
        per_eur_text = obs.value  # the publisher's own string, untouched
    elif quote == PIVOT:
        per_eur_text = per_eur_inverse(value)
    else:
        usd_per_eur = usd_per_eur_of(st, obs.source, obs.kind, time, pol)
        if usd_per_eur is None and nearby is not None and PIVOT in nearby:
            usd_per_eur = ONE / nearby[PIVOT]  # the same nearby day's crosses as its comparison
        if comparison is not None and usd_per_eur is not None:
            per_eur_text = per_eur(comparison * usd_per_eur)
        elif comparison is not None and obs.kind == REFERENCE:
            per_eur_text = ""  # the source's EUR cross may come later the same day (see kinds.settle)
        else:
            raise no_cross(obs)
    item = Item(index, st.batch, obs, time, day, value, subject, sign, factor, comparison, per_eur_text)
    item.nearby_cross = nearby is not None
    return item


def cross_table(st: State, source: str, kind: str, time: int, pol: KindPolicy) -> dict[str, Decimal] | None:
    """The source's crosses at `time` (or the nearest within the kind's cross tolerance)."""
    tables = st.crosses.get((source, kind))
    if not tables:
        return None
    exact = tables.get(time)
    if exact is not None:
        return exact
    tolerance = pol.cross_tolerance // MICRO
    best: dict[str, Decimal] | None = None
    best_gap = tolerance + 1
    for at, table in tables.items():
        gap = abs(at - time)
        if gap < best_gap:
            best, best_gap = table, gap
    return best


def add_cross(st: State, item: Item) -> None:
    if item.comparison is None:
        if PIVOT in (item.obs.base, item.obs.quote):
            # e.g. a GBP-based source: EUR per USD = (GBP per USD) / (GBP per EUR).
            tables = st.crosses.get((item.obs.source, item.obs.kind))
            table = tables.get(item.time) if tables else None
            if table is not None and item.subject in table and PIVOT not in table:
                table[PIVOT] = table[item.subject] / Decimal(item.per_eur_text)
        return
    tables = st.crosses.setdefault((item.obs.source, item.obs.kind), OrderedDict())
    table = tables.get(item.time)
    if table is None:
        table = tables[item.time] = {}
        if len(tables) > CROSS_TIMES:
            oldest = min(tables)
            del tables[oldest]
    if item.subject == COMPARISON:
        table[PIVOT] = ONE / item.comparison  # EUR per USD
    else:
        # First writer wins: figures are taken in order of directness (EUR/USD, USD pairs, EUR
        # pairs, others), so a cross derived through a third asset (USDT from BTC/USDT and
        # BTC/EUR) never replaces one the source quoted directly (EUR/USDT) at the same instant.
        table.setdefault(item.subject, item.comparison)


def drop_cross(st: State, item: Item) -> None:
    """Withdraw the cross a figure added (the figure was rejected after all)."""
    tables = st.crosses.get((item.obs.source, item.obs.kind))
    table = tables.get(item.time) if tables else None
    if table is not None:
        table.pop(PIVOT if item.subject == COMPARISON else item.subject, None)


def cross_holds(st: State, item: Item) -> bool:
    """The pivot cross an item was normalised with is still in its source's table."""
    table = cross_table(st, item.obs.source, item.obs.kind, item.time, st.policy.kinds[item.obs.kind])
    other = item.obs.base if item.subject == item.obs.quote else item.obs.quote
    if item.obs.kind == LIVE and other == PIVOT and (table is None or PIVOT not in table):
        return True  # a tick compared through the consensus EUR/USD, not a cross of its source
    if item.obs.kind == REFERENCE and (table is None or other not in table):
        # normalised through its nearby own cross (see normalise)
        return nearby_cross(st, item.obs.source, item.time, st.policy.kinds[REFERENCE], other) is not None
    return other == COMPARISON or (table is not None and other in table)


def consensus_usd_per_eur(st: State, kind: str, time: int, pol: KindPolicy) -> Decimal | None:
    """The last published consensus USD per EUR, when not older than the kind's `max_age`."""
    last = st.consensus.get((kind, COMPARISON))
    if last is not None and abs(time - last[0]) <= pol.max_age // MICRO:
        return last[1]
    return None


def nearby_cross(st: State, source: str, time: int, pol: KindPolicy, need: str) -> dict[str, Decimal] | None:
    """A fixing source's nearest own crosses holding `need`, within the kind's `max_age`: only for
    a figure that has none within `cross_tolerance` (a weekly table without the daily one)."""
    tables = st.crosses.get((source, REFERENCE))
    if not tables:
        return None
    near = [t for t, table in tables.items() if need in table and abs(t - time) <= pol.max_age // MICRO]
    return tables[min(near, key=lambda t: abs(t - time))] if near else None


def usd_per_eur_of(st: State, source: str, kind: str, time: int, pol: KindPolicy) -> Decimal | None:
    """The source's own USD per EUR at `time`, else the recent consensus one."""
    table = cross_table(st, source, kind, time, pol)
    if table is not None and PIVOT in table:
        return ONE / table[PIVOT]
    return consensus_usd_per_eur(st, kind, time, pol)


def complete(st: State, item: Item) -> None:
    """An accepted figure with no comparison value: its source's pivot cross may have come since
    (held figures, later batches)."""
    if item.comparison is None and item.subject != COMPARISON and item.per_eur_text:
        pol = st.policy.kinds[item.obs.kind]
        table = cross_table(st, item.obs.source, item.obs.kind, item.time, pol)
        if table is not None and PIVOT in table:
            item.comparison = Decimal(item.per_eur_text) * table[PIVOT]


def repair(st: State, source: str, day: dt.date, time: int, eur_per_usd: Decimal) -> None:
    """Give the same-date fixings of `source` that arrived before its pivot cross a comparison value."""
    for subject, slots in st.slots.items():
        slot = slots.get(day)
        c = slot.contribs.get(source) if slot is not None else None
        if c is not None and c.comparison is None and c.time == time:
            c.comparison = Decimal(c.per_eur_text) * eur_per_usd
            c.comparison_text = text(c.comparison)
            if slot is not None and len(slot.contribs) > 1:
                st.slots_to_republish.add((subject, day))
