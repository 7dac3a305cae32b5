"""Each source's own history (docs/validation.md § Anomaly classes: inverted, decimal shift,
**Volatility**, **Jumps**).

A figure is compared with the source's own previous figure of the same pair (within the kind's
history gap). Volatility is 1.4826 x the median absolute return over the last returns since the
last gap; with too few returns only gross errors (25 %) are judged. An inverted or shifted figure is
rejected at once; an uncorroborated jump is held until the source's next figure tells a lasting
move from a one-off spike. Held figures are acknowledged upstream, so they are persisted
(`held_records`, written by the validator after every batch) and restored at start
(`restore_held`), exactly as they were judged.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from kurs_common import money
from kurs_common.observation import Observation
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


# -- held figures across restarts ------------------------------------------------------------
SeriesKey = tuple[str, str, str, str]  # (source, kind, base, quote)


def held_records(st: State) -> dict[SeriesKey, dict[str, Any]]:
    """Every held figure as a JSON-ready record (decimals and times as exact strings)."""
    out: dict[SeriesKey, dict[str, Any]] = {}
    for key, series in st.series.items():
        if (held := series.pending) is None:
            continue
        item, obs = held.item, held.item.obs
        out[key] = {
            "key": list(key),
            "obs": {
                "source": obs.source,
                "feed": obs.feed,
                "kind": obs.kind,
                "base": obs.base,
                "quote": obs.quote,
                "value": obs.value,
                "day": obs.day,
                "observed_at": obs.observed_at.isoformat() if obs.observed_at else None,
                "fetched_at": obs.fetched_at.isoformat() if obs.fetched_at else None,
                "bid": obs.bid,
                "ask": obs.ask,
                "replay": obs.replay,
            },
            "time": item.time,
            "day": item.day.isoformat(),
            "value": str(item.value),
            "subject": item.subject,
            "sign": item.sign,
            "factor": None if item.factor is None else str(item.factor),
            "comparison": None if item.comparison is None else str(item.comparison),
            "per_eur_text": item.per_eur_text,
            "flags": [item.history_checked, item.peg_checked, item.nearby_cross],
            "prev": str(held.prev),
            "deviation": str(held.deviation),
            "threshold": str(held.threshold),
        }
    return out


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def restore_held(st: State, records: Iterable[dict[str, Any]]) -> int:
    """Put persisted held figures back into their series (a fresh state); returns how many."""
    count = 0
    for r in records:
        o = r["obs"]
        obs = Observation(
            o["source"], o["feed"], o["kind"], o["base"], o["quote"], o["value"], o["day"],
            _time(o["observed_at"]), _time(o["fetched_at"]), o["bid"], o["ask"], o["replay"],
        )  # fmt: skip
        checked, peg, nearby = r["flags"]
        item = Item(
            index=0,
            batch=0,
            obs=obs,
            time=r["time"],
            day=dt.date.fromisoformat(r["day"]),
            value=Decimal(r["value"]),
            subject=r["subject"],
            sign=r["sign"],
            factor=None if r["factor"] is None else Decimal(r["factor"]),
            comparison=None if r["comparison"] is None else Decimal(r["comparison"]),
            per_eur_text=r["per_eur_text"],
            history_checked=checked,
            peg_checked=peg,
            nearby_cross=nearby,
        )
        series = st.series.setdefault((obs.source, obs.kind, obs.base, obs.quote), Series())
        series.pending = Held(item, Decimal(r["prev"]), Decimal(r["deviation"]), Decimal(r["threshold"]))
        stats_for(st, obs, item.day).accepted += 1  # as when it was held (undone if rejected)
        count += 1
    return count
