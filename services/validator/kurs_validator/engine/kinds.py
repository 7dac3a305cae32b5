"""The two kinds (docs/validation.md § The two kinds): how reference fixings are judged per date.

A live tick is judged at once against the other sources' fresh ticks (`blend.evaluate`). Reference
fixings of one date from several sources are judged together once the batch has moved past that
date (`settle_all`), so the order in which sources arrive within a batch does not matter; a fixing
arriving in a later batch is judged against those of its date already seen. The thresholds of each
kind are `policy.KindPolicy`.
"""

from __future__ import annotations

import datetime as dt

from kurs_common.observation import REFERENCE
from kurs_validator import consensus
from kurs_validator.consensus import Point
from kurs_validator.engine.anomalies import reject
from kurs_validator.engine.blend import (
    admit,
    exclude_late,
    judge_self,
    publish_reference,
    republish,
    with_history,
)
from kurs_validator.engine.exactness import MICRO, per_eur
from kurs_validator.engine.history import hold
from kurs_validator.engine.normalisation import cross_holds, drop_cross, no_cross, usd_per_eur_of
from kurs_validator.engine.state import Contrib, Evaluation, Held, Item, Series, State, contrib_of, slot_of
from kurs_validator.model import BatchOutcome
from kurs_validator.policy import COMPARISON
from kurs_validator.rules import Reject

# Fixings waiting for their date to be judged: (currency, date) -> (figure, its series, a jump).
Deferred = dict[tuple[str, dt.date], list[tuple[Item, Series, Held | None]]]


def settle_all(st: State, out: BatchOutcome, deferred: Deferred, now: dt.datetime) -> None:
    """Judge every deferred date, then republish the dates a late cross made comparable."""
    # The pivot cross (USD) first, so that a rejected cross is known before the rest.
    for key in sorted(deferred, key=lambda k: (k[1], k[0] != COMPARISON, k[0])):
        settle(st, out, key, deferred[key], now)
    deferred.clear()
    for subject, day in sorted(st.slots_to_republish, key=lambda k: (k[1], k[0])):
        republish(st, out, subject, day, now)
    st.slots_to_republish.clear()


def settle(
    st: State,
    out: BatchOutcome,
    key: tuple[str, dt.date],
    entries: list[tuple[Item, Series, Held | None]],
    now: dt.datetime,
) -> None:
    """Judge the new fixings of one currency and date together with those seen before."""
    subject, day = key
    pol = st.policy.kinds[REFERENCE]
    slot = slot_of(st, subject, day)
    new: dict[str, tuple[Item, Series, Held | None]] = {}
    for entry in entries:
        item = entry[0]
        if not item.per_eur_text:
            usd_per_eur = usd_per_eur_of(st, item.obs.source, REFERENCE, item.time, pol)
            if usd_per_eur is None or item.comparison is None:
                reject(
                    st, out, item.obs, item.index, item.time, day, subject, entry[1], no_cross(item.obs), now
                )
                continue
            item.per_eur_text = per_eur(item.comparison * usd_per_eur)
        if item.factor is not None and item.subject != COMPARISON and not cross_holds(st, item):
            item.comparison = None  # its source's pivot cross was rejected meanwhile
        new[item.obs.source] = entry
    if len(new) == 1 and not slot.excluded and all(s in new for s in slot.contribs):
        # The common case of a single source: its own history and the pegs were its judges.
        ((source, (item, series, jump)),) = new.items()
        if jump is not None and hold_or_reject(st, out, item, series, jump, day, subject, now):
            return
        admit(st, out, item, series, slot=slot)
        publish_reference(st, out, item, now, slot)
        return
    contribs: dict[str, Contrib] = {
        s: c for s, c in slot.contribs.items() if s not in new and c.comparison is not None
    }
    for source, (item, _, _) in new.items():
        if item.comparison is not None:
            contribs[source] = contrib_of(item)
    points = [Point(s, c.comparison, 1.0) for s, c in contribs.items() if c.comparison is not None]
    if len(points) == 2:
        first = min(c.time for c in contribs.values())
        with_history(st, points, REFERENCE, subject, first, pol.max_age // MICRO)
    verdict = consensus.judge(points, pol.mad_k, pol.mad_floor) if len(points) >= 3 else None
    evaluation = Evaluation(points, contribs, verdict, [])
    admitted: Item | None = None
    for source in sorted(new):
        item, series, jump = new[source]
        try:
            corroborated = judge_self(st, item, evaluation, pol)
            if jump is not None and not corroborated and hold(st, out, item, series, jump):
                continue
        except Reject as exc:
            drop_cross(st, item)
            assert item.obs.observed_at is not None
            reject(st, out, item.obs, item.index, item.time, day, subject, series, exc, now)
            continue
        admit(st, out, item, series, own=contribs.get(source), slot=slot)
        admitted = item
    if verdict is not None:
        exclude_late(st, out, slot, verdict, len(points), subject, day, now)
    if admitted is not None:
        publish_reference(st, out, admitted, now, slot)


def hold_or_reject(
    st: State,
    out: BatchOutcome,
    item: Item,
    series: Series,
    jump: Held,
    day: dt.date,
    subject: str,
    now: dt.datetime,
) -> bool:
    """An uncorroborated jump: True when held or rejected, False when it is to be accepted."""
    try:
        return hold(st, out, item, series, jump)
    except Reject as exc:
        drop_cross(st, item)
        reject(st, out, item.obs, item.index, item.time, day, subject, series, exc, now)
        return True
