"""The rows the series cache keeps per day, and how a day is rendered against a base.

Two kinds of series: the reference series quoted per one pivot (the blend; one dict per day)
and a publisher's figures as published (its (base, quote, value) triples per day). Rendering
calls the very functions the uncached answers use (money.rebase, quotes.from_published), so a
cached day is the same strings.
"""

from __future__ import annotations

from collections.abc import Sequence

from kurs_common import money
from kurs_common.quotes import from_published
from kurs_rates.model import PIVOT

PerPivot = dict[str, str] | None  # one day of a pivot-quoted series (None: no figure per the pivot)
Published = tuple[tuple[str, str, str], ...]  # one day of a publisher's (base, quote, value) figures


def render_per_pivot(per_pivot: PerPivot, base: str, wanted: Sequence[str] | None) -> dict[str, str] | None:
    if per_pivot is None or (base != PIVOT and base not in per_pivot):
        return None  # the uncached path leaves such a day out too
    return money.rebase(per_pivot, PIVOT, base, wanted)


def render_published(figures: Published, base: str, wanted: Sequence[str] | None) -> dict[str, str] | None:
    try:
        return from_published(figures, base, wanted)
    except KeyError:
        return None  # the base was not published that day


def size_per_pivot(per_pivot: PerPivot) -> int:
    return 0 if per_pivot is None else 120 * len(per_pivot)


def size_published(figures: Published) -> int:
    return 160 * len(figures)
