"""Re-basing rates while keeping each figure's provenance.

* `rebase_entries`: the blended series (quoted per one pivot) against any base.
* `from_published`: one publisher's figures of one day, each in the orientation it was
  published in, against any base. A figure asked for in its own orientation comes back as
  the publisher's own string; any other is one division (or one inversion), rounded once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
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
    flag: str = ""  # a publisher's figure the validator kept out of the blend, and why


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


_WORK = Context(prec=34)


def home_currency(pairs: Iterable[tuple[str, str]]) -> str:
    """The currency a publisher quotes everything against: the one in the most of its pairs."""
    counts = Counter(code for pair in pairs for code in pair)
    return max(sorted(counts), key=lambda code: counts[code])


def from_published(
    figures: Sequence[tuple[str, str, str]], base: str, symbols: Sequence[str] | None
) -> dict[str, str]:
    """`(base, quote, value)` figures of one publisher and day, expressed against `base`.

    Direct figures (base -> symbol) are the published strings; the reverse of a published pair
    is its inversion; anything else crosses through the publisher's home currency with one
    division. Symbols the publisher does not quote are left out. KeyError when `base` is not
    among its currencies.
    """
    direct = {(b, q): v for b, q, v in figures}
    home = home_currency(direct)
    per_home: dict[str, Decimal] = {home: Decimal(1)}
    for (b, q), v in direct.items():
        if b == home:
            per_home.setdefault(q, Decimal(v))
        elif q == home:
            per_home.setdefault(b, _WORK.divide(Decimal(1), Decimal(v)))
    if base not in per_home:
        raise KeyError(base)
    wanted = list(symbols) if symbols is not None else [c for c in sorted(per_home) if c != base]
    out: dict[str, str] = {}
    for code in wanted:
        if code == base:
            out[code] = "1"
        elif (base, code) in direct:
            out[code] = direct[(base, code)]
        elif (code, base) in direct:
            out[code] = money.invert(direct[(code, base)])
        elif code in per_home:
            out[code] = money.ratio(per_home[code], per_home[base])
    return out
