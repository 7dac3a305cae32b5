"""Re-basing a set of pivot-quoted rates while keeping each figure's provenance."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kurs_common import money


class PivotEntry(Protocol):
    """Anything that holds one currency's rate per one pivot and where it came from."""

    @property
    def value(self) -> str: ...
    @property
    def day(self) -> dt.date: ...
    @property
    def observed_at(self) -> dt.datetime: ...
    @property
    def sources(self) -> tuple[str, ...]: ...
    @property
    def replay(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class QuotedRate:
    currency: str
    value: str
    day: dt.date
    observed_at: dt.datetime | None
    sources: tuple[str, ...]
    replay: bool = False


def rebase_entries(
    entries: Mapping[str, PivotEntry], pivot: str, base: str, symbols: Sequence[str] | None
) -> tuple[QuotedRate, ...]:
    """Express pivot-quoted entries against `base`.

    A cross rate depends on two figures (the symbol's and the base's), so it carries the union of
    their sources, the newer of their days and observation times, and is a replay when either is.
    Raises KeyError when `base` is neither the pivot nor in `entries`.
    """
    values = money.rebase({code: e.value for code, e in entries.items()}, pivot, base, symbols)
    base_entry = entries.get(base)
    fallback_day = max((e.day for e in entries.values()), default=dt.date.min)
    out: list[QuotedRate] = []
    for code, value in values.items():
        parts = [e for e in (entries.get(code), base_entry) if e is not None]
        if not parts:  # pivot per pivot
            out.append(QuotedRate(code, value, fallback_day, None, ()))
            continue
        newest = max(parts, key=lambda e: e.observed_at)
        sources = tuple(sorted({s for e in parts for s in e.sources}))
        out.append(
            QuotedRate(code, value, newest.day, newest.observed_at, sources, any(e.replay for e in parts))
        )
    return tuple(out)
