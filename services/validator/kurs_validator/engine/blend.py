"""Consensus (docs/validation.md § Consensus): judging a figure against its slot, and publishing.

The statistics (median, MAD, weighted median) are in `kurs_validator.consensus`; here they are
applied to the engine's slots: a figure's peers (with two figures the last published consensus
joins as a third opinion), the outlier rule, the weights (priority x age decay), the figure
published for a slot, and late evidence against a fixing published earlier.
"""

from __future__ import annotations

import datetime as dt

from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_validator import consensus
from kurs_validator.consensus import Point
from kurs_validator.engine.exactness import MICRO, ONE, ZERO, pct, text
from kurs_validator.engine.history import describe, insert
from kurs_validator.engine.normalisation import add_cross, complete, repair
from kurs_validator.engine.quality import contribution, emit
from kurs_validator.engine.state import (
    Contrib,
    Evaluation,
    Item,
    Series,
    Slot,
    State,
    contrib_of,
    slot_of,
    stats_for,
)
from kurs_validator.model import Anomaly, BatchOutcome
from kurs_validator.policy import COMPARISON, PIVOT, KindPolicy
from kurs_validator.rules import Reject, classify

HISTORY = "~history"  # the pseudo-contributor "last published consensus"


def weight(st: State, c: Contrib, newest: int, pol: KindPolicy) -> float:
    """Priority x 0.5^(age / half-life), age measured from the newest contribution."""
    age = (newest - c.time) / (pol.half_life // MICRO)
    decay: float = 0.5 ** max(age, 0.0)
    return st.policy.weight_of(c.source) * decay


def median_of(candidates: list[Contrib], weights: dict[str, float]) -> Contrib:
    """The contribution at the weighted median of the comparison values."""
    points = [Point(c.source, c.comparison, weights[c.source]) for c in candidates if c.comparison]
    if not points:  # nothing comparable (no pivot crosses): the highest weight stands
        return max(candidates, key=lambda c: (weights[c.source], c.source))
    key = consensus.weighted_median(points).key
    return next(c for c in candidates if c.source == key)


def with_history(st: State, points: list[Point], kind: str, subject: str, first: int, max_age: int) -> None:
    """Two figures: the last published consensus (older than `first`, within `max_age`) joins."""
    if len(points) == 2:
        last = st.consensus.get((kind, subject))
        if last is not None and last[0] < first and first - last[0] <= max_age:
            points.append(Point(HISTORY, last[1], 0.0))


def evaluate(st: State, item: Item, pol: KindPolicy) -> Evaluation:
    """The contributions a live tick is judged with (itself first), and the verdict."""
    own = contrib_of(item)
    contribs = {own.source: own}
    stale: list[Contrib] = []
    if item.comparison is None:
        return Evaluation([], contribs, None, stale)
    others = st.latest.get((item.obs.kind, item.subject))
    if item.obs.kind == REFERENCE or not others or (len(others) == 1 and own.source in others):
        return Evaluation([], contribs, None, stale)  # nobody else to compare with (fixings: kinds.settle)
    max_age = pol.max_age // MICRO
    for source, c in others.items():
        if source in contribs or c.comparison is None or c.time > item.time:
            continue
        if item.time - c.time > max_age:
            stale.append(c)
        else:
            contribs[source] = c
    newest = max(c.time for c in contribs.values())
    points = [
        Point(c.source, c.comparison, weight(st, c, newest, pol))
        for c in contribs.values()
        if c.comparison is not None
    ]
    with_history(st, points, item.obs.kind, item.subject, item.time, max_age)
    # With two figures the MAD cannot tell which is wrong: a third opinion (history) is needed.
    verdict = consensus.judge(points, pol.mad_k, pol.mad_floor) if len(points) >= 3 else None
    return Evaluation(points, contribs, verdict, stale)


def judge_self(st: State, item: Item, evaluation: Evaluation, pol: KindPolicy) -> bool:
    """Raise when the figure is an outlier; True when another source corroborates it."""
    verdict = evaluation.verdict
    if item.comparison is None:
        return False
    if verdict is None:
        return any(
            p.key not in (item.obs.source, HISTORY)
            and consensus.relative_deviation(item.comparison, p.value) <= pol.mad_floor
            for p in evaluation.points
        )
    source = item.obs.source
    if source in verdict.outliers:
        centre = verdict.centre
        assert item.factor is not None
        expected = centre / item.factor if item.sign == 1 else item.factor / centre
        policy = st.policy
        found = classify(
            item.value, expected, verdict.tolerance, policy.inversion_tolerance, policy.shift_tolerance
        )
        reason = found if found in ("inverted", "decimal_shift") else "outlier"
        raise Reject(
            reason,
            f"{item.obs.value} is {pct(verdict.deviations[source])} from the consensus of "
            f"{len(evaluation.points)} ({describe(reason)}; tolerance {pct(verdict.tolerance)})",
            text(expected),
        )
    return any(
        p.key not in (source, HISTORY)
        and p.key not in verdict.outliers
        and consensus.relative_deviation(item.comparison, p.value) <= verdict.tolerance
        for p in evaluation.points
    )


def exclude_late(
    st: State,
    out: BatchOutcome,
    slot: Slot,
    verdict: consensus.Verdict,
    count: int,
    subject: str,
    day: dt.date,
    now: dt.datetime,
) -> None:
    """Late evidence against fixings published earlier: excluded from the slot, recorded as outliers."""
    for source in list(slot.contribs):
        if source in verdict.outliers:
            late = slot.contribs.pop(source)
            slot.excluded[source] = contribution(late, 0.0, "outlier")
            out.anomalies.append(
                Anomaly(
                    reason="outlier",
                    detail=f"{late.per_eur_text} per {PIVOT}, published before, is "
                    f"{pct(verdict.deviations[source])} from the consensus of {count} fixings "
                    f"of {day} that arrived later (tolerance {pct(verdict.tolerance)})",
                    observation=Observation(
                        source=source,
                        feed="",
                        kind=REFERENCE,
                        base=PIVOT,
                        quote=subject,
                        value=late.per_eur_text,
                        day=day.isoformat(),
                        observed_at=late.observed_at,
                    ),
                    currency=subject,
                    expected="",
                    detected_at=now,
                )
            )


def admit(
    st: State,
    out: BatchOutcome,
    item: Item,
    series: Series,
    count: bool = True,
    own: Contrib | None = None,
    slot: Slot | None = None,
) -> Contrib:
    """Record an accepted figure in the state (series, crosses, latest figures, date slot)."""
    insert(st, series, item)
    add_cross(st, item)
    if item.comparison is None:
        complete(st, item)
    if own is None or own.comparison != item.comparison:
        own = contrib_of(item)
    latest = st.latest.setdefault((item.obs.kind, item.subject), {})
    current = latest.get(own.source)
    if current is None or current.time <= own.time:
        latest[own.source] = own
    if item.obs.kind == REFERENCE:
        if slot is None:
            slot = slot_of(st, item.subject, item.day)
        mine = slot.contribs.get(own.source)
        if mine is not None and mine.direct and not own.direct:
            # A publisher quoting a currency both per EUR and per USD (BoC EUR/CAD and USD/CAD):
            # its own per-EUR figure stands; the one derived through its USD cross does not replace it.
            own = mine
        slot.contribs[own.source] = own
        slot.excluded.pop(own.source, None)
        if item.subject == COMPARISON and item.comparison is not None:
            repair(st, own.source, item.day, item.time, ONE / item.comparison)
    if count:  # a held figure was counted when it was held
        out.accepted += 1
        stats_for(st, item.obs, item.day).accepted += 1
    return own


def accept(
    st: State,
    out: BatchOutcome,
    item: Item,
    series: Series,
    evaluation: Evaluation,
    now: dt.datetime,
    count: bool = True,
) -> None:
    """Admit a figure and publish: a fixing its date's consensus, a tick when it is the median."""
    own = admit(st, out, item, series, count)
    if item.obs.kind == REFERENCE:
        publish_reference(st, out, item, now)
        return
    pol = st.policy.kinds[LIVE]
    verdict = evaluation.verdict
    outliers = verdict.outliers if verdict is not None else frozenset()
    excluded = [contribution(c, 0.0, "stale") for c in evaluation.stale]
    excluded.extend(contribution(c, 0.0, "outlier") for s, c in evaluation.contribs.items() if s in outliers)
    candidates = [
        own,
        *(c for s, c in evaluation.contribs.items() if s != own.source and s not in outliers),
    ]
    weights = weights_of(st, candidates, pol)
    chosen = own if len(candidates) == 1 else median_of(candidates, weights)
    if chosen.comparison is not None:
        st.consensus[(LIVE, item.subject)] = (chosen.time, chosen.comparison)
    if chosen is not own:
        return  # the consensus tick is another source's, already published when it arrived
    spread = verdict.spread if verdict is not None else ZERO
    emit(st, out, LIVE, item.subject, chosen, candidates, excluded, weights, spread, False, True, now)


def weights_of(st: State, candidates: list[Contrib], pol: KindPolicy) -> dict[str, float]:
    """Each candidate's weight in the median: a lone one's is its source's policy weight, others'
    are weighed against the newest of them (weight())."""
    if len(candidates) == 1:
        only = candidates[0].source
        return {only: st.policy.weight_of(only)}
    newest = max(c.time for c in candidates)
    return {c.source: weight(st, c, newest, pol) for c in candidates}


def _judge(candidates: list[Contrib], pol: KindPolicy) -> consensus.Verdict | None:
    """The outlier rule over a slot's contributors (None with fewer than two comparable)."""
    points = [Point(c.source, c.comparison, 1.0) for c in candidates if c.comparison is not None]
    return consensus.judge(points, pol.mad_k, pol.mad_floor) if len(points) >= 2 else None


def prioritised(
    st: State, candidates: list[Contrib], weights: dict[str, float], verdict: consensus.Verdict | None
) -> Contrib:
    """The fixing to publish: the highest-priority contributor's (a unique highest
    `Policy.weight_of`, the ECB by default) when it is within the consensus tolerance (the outlier
    rule over the slot's contributors), else the weighted median's."""
    weight_of = st.policy.weight_of
    top = max(candidates, key=lambda c: weight_of(c.source))
    if verdict is not None and top.comparison is not None and top.source not in verdict.outliers:
        priority = weight_of(top.source)
        if sum(weight_of(c.source) == priority for c in candidates) == 1:
            return top
    return median_of(candidates, weights)


def publish_reference(
    st: State, out: BatchOutcome, item: Item, now: dt.datetime, slot: Slot | None = None
) -> None:
    """Publish the consensus of a currency's fixings of one date (the weighted median's figure)."""
    pol = st.policy.kinds[REFERENCE]
    if slot is None:
        slot = slot_of(st, item.subject, item.day)
    own = slot.contribs[item.obs.source]
    candidates = list(slot.contribs.values())
    spread = ZERO
    weights = weights_of(st, candidates, pol)
    if len(candidates) == 1:
        chosen = own
    else:
        verdict = _judge(candidates, pol)
        chosen = prioritised(st, candidates, weights, verdict)
        if verdict is not None:
            spread = verdict.spread
    if chosen.comparison is not None:
        st.consensus[(REFERENCE, item.subject)] = (chosen.time, chosen.comparison)
    forwarded = (chosen.source, chosen.per_eur_text)
    publish = chosen is own or slot.forwarded != forwarded
    slot.forwarded = forwarded
    witnesses = False
    if len(candidates) == 1 and not (item.history_checked or item.peg_checked):
        max_age = pol.max_age // MICRO
        witnesses = any(
            s != own.source and 0 <= own.time - c.time <= max_age
            for s, c in st.latest.get((REFERENCE, item.subject), {}).items()
        )
    excluded = list(slot.excluded.values())
    backed = item.history_checked or item.peg_checked or witnesses
    emit(
        st, out, REFERENCE, item.subject, chosen, candidates, excluded, weights, spread, backed, publish, now
    )


def republish(st: State, out: BatchOutcome, subject: str, day: dt.date, now: dt.datetime) -> None:
    """A date's consensus again, after some of its fixings became comparable (a late cross)."""
    slots = st.slots.get(subject)
    slot = slots.get(day) if slots is not None else None
    if slot is None or len(slot.contribs) < 2:
        return
    pol = st.policy.kinds[REFERENCE]
    candidates = list(slot.contribs.values())
    newest = max(c.time for c in candidates)
    weights = {c.source: weight(st, c, newest, pol) for c in candidates}
    verdict = _judge(candidates, pol)
    chosen = prioritised(st, candidates, weights, verdict)
    forwarded = (chosen.source, chosen.per_eur_text)
    if forwarded == slot.forwarded:
        return
    slot.forwarded = forwarded
    excluded = list(slot.excluded.values())
    spread = verdict.spread if verdict is not None else ZERO
    emit(
        st,
        out,
        REFERENCE,
        subject,
        chosen,
        candidates,
        excluded,
        weights,
        spread,
        True,
        True,
        now,
    )
