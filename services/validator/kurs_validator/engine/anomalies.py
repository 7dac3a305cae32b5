"""Anomaly classes that need the engine's state (docs/validation.md § Anomaly classes: **Stuck**,
**Stale**, **Duplicates**, § Pegs), and the bookkeeping of a rejection.

The rules on one observation alone are in `kurs_validator.rules`; the own-history rules (inverted,
decimal shift, jump) in `engine.history`; the outlier rule in `engine.blend`.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from kurs_common import money
from kurs_common.observation import REFERENCE, Observation
from kurs_validator.engine.exactness import ONE, pct, text
from kurs_validator.engine.history import remember_rejection, remove
from kurs_validator.engine.state import Item, Series, State, Stats, slot_of, stats_for
from kurs_validator.model import Anomaly, BatchOutcome, Contribution, Rejection, SourceStatus
from kurs_validator.policy import PIVOT, KindPolicy
from kurs_validator.rules import Reject


def anomaly(obs: Observation, subject: str, exc: Reject, now: dt.datetime) -> Anomaly:
    return Anomaly(
        reason=exc.reason,
        detail=exc.detail,
        observation=obs,
        currency=subject or (obs.quote if obs.base == PIVOT else obs.base),
        expected=exc.expected,
        detected_at=now,
    )


def reject(
    st: State,
    out: BatchOutcome,
    obs: Observation,
    index: int,
    time: int,
    day: dt.date,
    subject: str,
    series: Series,
    exc: Reject,
    now: dt.datetime,
) -> None:
    """Record a rejection: in the outcome, as an anomaly, in the series and the date's slot."""
    remember_rejection(series, time, obs.value, exc.reason)
    out.rejections.append(Rejection(index, exc.reason, exc.detail, exc.field))
    out.anomalies.append(anomaly(obs, subject, exc, now))
    stats_for(st, obs, day).rejected += 1
    if subject and obs.kind == REFERENCE:
        slot_of(st, subject, day).excluded[obs.source] = Contribution(
            obs.source, obs.value, "", obs.observed_at or now, 0.0, exc.reason
        )


def seen_before(
    st: State, out: BatchOutcome, index: int, obs: Observation, time: int, series: Series, stats: Stats
) -> bool:
    """Duplicates: the same figure of the same (source, pair, time) gets the same verdict (True);
    a different figure for that time is a correction, judged again (False)."""
    at = bisect.bisect_left(series.times, time)
    if at < len(series.times) and series.times[at] == time:
        if series.texts[at] == obs.value:
            out.accepted += 1
            out.duplicates += 1
            return True
        remove(st, series, at, obs.kind)
    if (pending := series.pending) is not None and pending.item.time == time:
        if pending.item.obs.value == obs.value:
            out.accepted += 1
            out.duplicates += 1
            return True
        series.pending = None
    earlier = series.rejected.get(time)
    if earlier is not None and earlier[0] == obs.value:
        out.rejections.append(Rejection(index, earlier[1], f"already rejected as {earlier[1]}"))
        stats.rejected += 1
        return True
    return False


def stuck(st: State, publication: Iterable[Observation], time: int) -> bool:
    """A publication that repeats the source's previous figures where those used to move."""
    total = same = 0
    pegs = st.pegs
    for obs in publication:
        series = st.series.get((obs.source, obs.kind, obs.base, obs.quote))
        if series is None or not series.times or obs.quote in pegs or obs.base in pegs:
            continue
        at = bisect.bisect_left(series.times, time)
        if at == 0 or (at < len(series.times) and series.times[at] == time):
            continue  # no earlier figure, or seen before (duplicates are not judged again)
        last_ret = series.rets[at - 1]
        if last_ret <= 0:
            continue  # the series was not moving (a peg, or a constant figure): not comparable
        total += 1
        same += series.texts[at - 1] == obs.value
    return total >= st.policy.stuck_min_pairs and same >= st.policy.stuck_share * total


def check_peg(st: State, item: Item, pol: KindPolicy) -> None:
    """Pegs: raise `peg_break` when a pegged currency is outside its band (plus the kind's slack)."""
    peg = st.pegs.get(item.subject)
    if peg is None or item.day < peg.since or item.nearby_cross:
        return
    if peg.anchor == PIVOT:
        level: Decimal | None = Decimal(item.per_eur_text) if item.per_eur_text else None
    else:
        level = item.comparison
    if level is None:
        return
    item.peg_checked = True
    low = peg.low * (ONE - pol.peg_slack)
    high = peg.high * (ONE + pol.peg_slack)
    if not low <= level <= high:
        raise Reject(
            "peg_break",
            f"{item.subject} at {text(level)} per {peg.anchor}, outside {peg.note} "
            f"(band {money.format_decimal(peg.low)}-{money.format_decimal(peg.high)}, "
            f"slack {pct(pol.peg_slack)})",
            money.format_decimal((peg.low + peg.high) / 2),
        )


def check_stale(st: State, now: dt.datetime) -> list[Anomaly]:
    """Stale: flag sources whose newest figure is older than their expected publication window."""
    found: list[Anomaly] = []
    for (source, kind), stats in list(st.stats.items()):
        window = st.policy.kinds[kind].stale_after
        stale = now - stats.last_observed_at > window
        if stale and not stats.stale:
            found.append(
                Anomaly(
                    reason="stale_source",
                    detail=f"{source} ({kind}) has not advanced since "
                    f"{stats.last_observed_at.isoformat()}; expected within {window}",
                    observation=Observation(
                        source=source,
                        feed="",
                        kind=kind,
                        base="",
                        quote="",
                        value="",
                        day=stats.last_day.isoformat(),
                        observed_at=stats.last_observed_at,
                    ),
                    currency="",
                    expected="",
                    detected_at=now,
                )
            )
        stats.stale = stale
    return found


def source_states(st: State, now: dt.datetime) -> list[SourceStatus]:
    """Each (source, kind): its newest observation, FRESH/STALE, window and counters."""
    out = []
    snapshot = list(st.stats.items())
    for (source, kind), stats in sorted(snapshot):
        window = st.policy.kinds[kind].stale_after
        out.append(
            SourceStatus(
                source=source,
                kind=kind,
                last_observed_at=stats.last_observed_at,
                last_day=stats.last_day,
                stale=now - stats.last_observed_at > window,
                window=window,
                accepted=stats.accepted,
                rejected=stats.rejected,
            )
        )
    return out
