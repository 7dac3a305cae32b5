"""Each source's own history (docs/validation.md § Anomaly classes: inverted, decimal shift,
**Volatility**, **Jumps**).

A figure is compared with the source's own previous figure of the same pair (within the kind's
history gap). Volatility is 1.4826 x the median absolute return over the last returns since the
last gap; with too few returns only gross errors (25 %) are judged. An inverted or shifted figure is
rejected at once; an uncorroborated jump is held until the source's next figure tells a lasting
move from a one-off spike.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

from kurs_common import money
from kurs_validator import consensus
from kurs_validator.engine.exactness import MICRO, ONE, pct
from kurs_validator.engine.state import Held, Item, Series, State, stats_for
from kurs_validator.model import BatchOutcome
from kurs_validator.policy import KindPolicy
from kurs_validator.rules import Reject, classify

GROSS = Decimal("0.25")  # with too little history only gross errors (inversions, shifts) are judged
GAP = Decimal(-1)  # the return of the first figure of a series, or of the first after a gap
REJECTIONS_KEPT = 4096  # per series: enough to recognise a resubmitted batch as a duplicate

_DESCRIPTIONS = {
    "inverted": "looks like 1/expected: an inverted quote",
    "decimal_shift": "off by a power of ten: a decimal shift",
    "jump": "a jump beyond the recent volatility",
    "outlier": "an outlier against the other sources",
}


def describe(reason: str) -> str:
    return _DESCRIPTIONS.get(reason, reason)


def remember_rejection(series: Series, time: int, value: str, reason: str) -> None:
    """Keep the newest rejections only: a source rejected forever must not grow the state forever."""
    series.rejected[time] = (value, reason)
    if len(series.rejected) > REJECTIONS_KEPT:
        del series.rejected[next(iter(series.rejected))]


def fix_ret(series: Series, at: int, gap: int) -> None:
    if at >= len(series.times):
        return
    if at == 0 or series.times[at] - series.times[at - 1] > gap:
        series.rets[at] = GAP
    else:
        series.rets[at] = abs(series.values[at] / series.values[at - 1] - ONE)


def insert(st: State, series: Series, item: Item) -> None:
    """Add an accepted figure to its series (the live kind keeps the last `max_series`)."""
    at = bisect.bisect_left(series.times, item.time)
    series.times.insert(at, item.time)
    series.texts.insert(at, item.obs.value)
    series.values.insert(at, item.value)
    series.rets.insert(at, GAP)
    series.rejected.pop(item.time, None)
    pol = st.policy.kinds[item.obs.kind]
    gap = pol.history_gap // MICRO
    fix_ret(series, at, gap)
    fix_ret(series, at + 1, gap)
    limit = pol.max_series
    if limit and len(series.times) > limit:
        cut = len(series.times) - limit
        del series.times[:cut], series.texts[:cut], series.values[:cut], series.rets[:cut]
        series.rets[0] = GAP


def remove(st: State, series: Series, at: int, kind: str) -> None:
    """Take a figure out of its series (a correction replaces it)."""
    del series.times[at], series.texts[at], series.values[at], series.rets[at]
    fix_ret(series, at, st.policy.kinds[kind].history_gap // MICRO)


def check_history(st: State, item: Item, series: Series, pol: KindPolicy) -> Held | None:
    """Raise on an inverted or shifted figure; return a jump to confirm, or None."""
    at = bisect.bisect_left(series.times, item.time)
    if at == 0 or item.time - series.times[at - 1] > pol.history_gap // MICRO:
        return None
    prev = series.values[at - 1]
    window = series.rets[max(0, at - pol.history_window) : at]
    if GAP in window:  # the series restarted after a gap: only the returns since count
        cut = len(window)
        while window[cut - 1] != GAP:
            cut -= 1
        window = window[cut:]
    if len(window) >= pol.min_history:
        vol = consensus.MAD_SCALE * consensus.median(window)
        threshold = max(pol.jump_k * vol, pol.jump_floor)
        item.history_checked = True
    else:
        threshold = GROSS
    policy = st.policy
    found = classify(item.value, prev, threshold, policy.inversion_tolerance, policy.shift_tolerance)
    if found is None:
        return None
    if found != "jump":
        raise Reject(
            found,
            f"{item.obs.value} against {series.texts[at - 1]} the figure before ({describe(found)})",
            series.texts[at - 1],
        )
    if not item.history_checked:
        return None
    return Held(item, prev, abs(item.value / prev - ONE), threshold)


def spike_or_move(st: State, jump: Held, following: Decimal) -> None:
    """Raise when the figure after a jump comes back: the jump was a one-off spike."""
    if abs(following / jump.item.value - ONE) <= jump.threshold:
        return  # the new level held: a real move
    if (
        abs(following / jump.prev - ONE)
        <= st.policy.kinds[jump.item.obs.kind].revert_fraction * jump.deviation
    ):
        raise Reject(
            "jump",
            f"{jump.item.obs.value} jumped {pct(jump.deviation)} from {money.format_decimal(jump.prev)} "
            f"(allowed {pct(jump.threshold)}) and the next figure {money.format_decimal(following)} "
            "came back: a one-day spike",
            money.format_decimal(jump.prev),
        )


def hold(st: State, out: BatchOutcome, item: Item, series: Series, jump: Held) -> bool:
    """An uncorroborated jump: judged by the next figure (raises on a spike); True when held."""
    pol = st.policy.kinds[item.obs.kind]
    at = bisect.bisect_right(series.times, item.time)
    if at < len(series.times) and series.times[at] - item.time <= pol.history_gap // MICRO:
        spike_or_move(st, jump, series.values[at])  # the next figure is known already
        return False
    series.pending = jump
    out.accepted += 1
    out.held += 1
    stats_for(st, item.obs, item.day).accepted += 1
    return True
