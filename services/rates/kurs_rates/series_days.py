"""The rows the series cache keeps per day, and how a day is rendered against a base.

Two kinds of series: the reference series quoted per one pivot (the blend) and a publisher's
figures as published (its (base, quote, value) triples per day). A pivot day is kept packed in
one string ("AUD:1.6,BGN:1.9558,…": about 5x less memory than a dict of strings) and unpacked
only when a base is rendered, once per month and base. Rendering calls the very functions the
uncached answers use (money.rebase, quotes.from_published), so a cached day is the same strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kurs_common import money
from kurs_common.quotes import from_published
from kurs_rates.model import PIVOT

PerPivot = str | None  # one day per the pivot, packed "CODE:value,…" (None: no figure per the pivot)
PublisherDay = tuple[tuple[str, str, str], ...]  # one day of a publisher's (base, quote, value) figures


def pack(per_pivot: Mapping[str, str] | None) -> PerPivot:
    return None if per_pivot is None else ",".join(f"{code}:{value}" for code, value in per_pivot.items())


def render_per_pivot(packed: PerPivot, base: str, wanted: Sequence[str] | None) -> dict[str, str] | None:
    if packed is None:
        return None
    per_pivot = dict(pair.split(":", 1) for pair in packed.split(","))
    if base != PIVOT and base not in per_pivot:
        return None  # the uncached path leaves such a day out too
    return money.rebase(per_pivot, PIVOT, base, wanted)


def render_published(figures: PublisherDay, base: str, wanted: Sequence[str] | None) -> dict[str, str] | None:
    try:
        return from_published(figures, base, wanted)
    except KeyError:
        return None  # the base was not published that day


def size_per_pivot(packed: PerPivot) -> int:
    return 0 if packed is None else 49 + len(packed)


def size_published(figures: PublisherDay) -> int:
    return 160 * len(figures)
