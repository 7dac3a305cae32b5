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
from decimal import Context, Decimal

from kurs_common import money
from kurs_common.rate import UNOBSERVED, Rate, RateKind


def rebase_entries(
    entries: Mapping[str, Rate], pivot: str, base: str, symbols: Sequence[str] | None
) -> tuple[Rate, ...]:
    """Express pivot-quoted rates against `base`.

    A cross rate depends on two figures (the symbol's and the base's), so it carries the union of
    their sources, the newer of their days and observation times (and that figure's source and
    kind), and is a replay when either is. Raises KeyError when `base` is neither the pivot nor in
    `entries`.
    """
    values = money.rebase({code: e.value for code, e in entries.items()}, pivot, base, symbols)
    base_entry = entries.get(base)
    fallback_day = max((e.day for e in entries.values()), default=dt.date.min)
    out: list[Rate] = []
    for code, value in values.items():
        entry = entries.get(code)
        if entry is not None and base_entry is not None:
            newest = base_entry if base_entry.observed_at > entry.observed_at else entry
            sources = (*entry.sources, *base_entry.sources)
            replay = entry.replay or base_entry.replay
        else:
            one = entry if entry is not None else base_entry
            if one is None:  # pivot per pivot
                out.append(Rate("", RateKind.REFERENCE, code, value, fallback_day, UNOBSERVED, (), base=base))
                continue
            newest, sources, replay = one, one.sources, one.replay
        out.append(
            Rate(
                newest.source,
                newest.kind,
                code,
                value,
                newest.day,
                newest.observed_at,
                tuple(sorted(set(sources))),
                replay,
                base,
            )
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


def published_days(
    days: Mapping[tuple[str, str], dt.date], base: str, codes: Iterable[str]
) -> dict[str, dt.date]:
    """The date of each figure `from_published` answers, from the date of each published pair.

    A publisher's latest answer mixes dates (each figure its newest of the last CARRY_DAYS days),
    so each answered figure carries the date of what it was made from: a direct or inverted pair
    its own date; a cross through the publisher's home currency the newer of its two figures'.
    """
    home = home_currency(days)
    per_home: dict[str, dt.date] = {}
    for (b, q), day in days.items():
        if b == home:
            per_home.setdefault(q, day)
        elif q == home:
            per_home.setdefault(b, day)
    newest = max(days.values())
    out: dict[str, dt.date] = {}
    for code in codes:
        direct = days.get((base, code)) or days.get((code, base))
        if direct is not None:
            out[code] = direct
        else:
            out[code] = max(
                (d for d in (per_home.get(code), per_home.get(base)) if d is not None), default=newest
            )
    return out
