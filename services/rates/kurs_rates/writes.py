"""How a batch of rates is written: the one inserted / updated / unchanged classifier both stores use.

Pure (no I/O). A store calls `plan_batch` on the batch (keys, in-batch duplicates, decimal
check), reads what it already holds for the batch's reference keys (or has its merge statement
return it), inserts the first occurrence of each live key noting which were new, and calls
`classify` for the counts, the changed rates and the reference rows to write.

The rules (docs/storage.md "Writes"):

* A reference rate is keyed on (source, day, base, currency), a live tick on (source, currency,
  observed_at). Values compare as decimals ("1.10" equals "1.1").
* The first occurrence of a reference key is *inserted* when nothing was stored for it,
  *updated* when the stored value differs (a publisher's correction), else *unchanged*. A later
  occurrence in the same batch is compared with the value the key holds by then: updated when
  it differs, unchanged when equal.
* The row stored for a reference key is that of its last occurrence that changed its value;
  a key none of whose occurrences changed anything is not written at all.
* The first occurrence of a live key is inserted unless the store already held the key; later
  occurrences are unchanged (ticks are never corrected).
* `changed` lists the inserted and updated rates in input order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from kurs_common.rate import Rate, RateKind

RefKey: TypeAlias = tuple[str, dt.date, str, str]  # source, day, base, currency
LiveKey: TypeAlias = tuple[str, str, dt.datetime]  # source, currency, observed_at (UTC)


def ref_key(rate: Rate) -> RefKey:
    return (rate.source, rate.day, rate.base, rate.currency)


def live_key(rate: Rate) -> LiveKey:
    return (rate.source, rate.currency, rate.observed_at.astimezone(dt.UTC))


@dataclass(slots=True)
class RefOccurrences:
    """A reference key's occurrences in one batch."""

    first: int  # index of the first occurrence (compared with the stored value)
    final: int  # index of the last occurrence that changed the key's value within the batch
    later: list[tuple[int, bool]]  # every later occurrence: (index, changed the running value)


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What can be told of a batch before the store is asked: its keys and in-batch duplicates."""

    reference: dict[RefKey, RefOccurrences]  # in order of first occurrence
    live: dict[LiveKey, int]  # index of each live key's first occurrence
    live_repeats: int  # later occurrences of a live key within the batch


def decimal_value(rate: Rate, index: int) -> Decimal:
    try:
        return Decimal(rate.value)
    except InvalidOperation as exc:
        raise ValueError(f"rates[{index}].value: {rate.value!r} is not a decimal number") from exc


def plan_batch(rates: Sequence[Rate]) -> BatchPlan:
    """Group a batch by key. ValueError (naming the item) when a value is not a decimal."""
    reference: dict[RefKey, RefOccurrences] = {}
    running: dict[RefKey, Decimal] = {}
    live: dict[LiveKey, int] = {}
    repeats = 0
    for i, rate in enumerate(rates):
        value = decimal_value(rate, i)
        if rate.kind is RateKind.REFERENCE:
            key = (rate.source, rate.day, rate.base, rate.currency)
            known = reference.get(key)
            if known is None:
                reference[key] = RefOccurrences(i, i, [])
                running[key] = value
            elif value != running[key]:
                running[key] = value
                known.final = i
                known.later.append((i, True))
            else:
                known.later.append((i, False))
        else:
            lkey = live_key(rate)
            if lkey in live:
                repeats += 1
            else:
                live[lkey] = i
    return BatchPlan(reference, live, repeats)


@dataclass(frozen=True, slots=True)
class Classified:
    inserted: int
    updated: int
    unchanged: int
    changed: tuple[int, ...]  # indexes of the inserted and updated rates, ascending (input order)
    # Reference rows to write: key -> index of the rate whose row is stored for it.
    writes: dict[RefKey, int]
    new_keys: frozenset[RefKey]  # the keys of `writes` nothing was stored for (insert, not update)


def classify(
    rates: Sequence[Rate],
    plan: BatchPlan,
    stored: Mapping[RefKey, str],
    live_held: Collection[LiveKey],
) -> Classified:
    """Classify a planned batch against what the store held before it.

    `stored`: the value stored for each reference key of the batch that had one (others absent).
    `live_held`: the batch's live keys the store already held (their insert did nothing).
    """
    inserted = updated = unchanged = 0
    changed: list[int] = []
    writes: dict[RefKey, int] = {}
    new_keys: set[RefKey] = set()
    for key, occ in plan.reference.items():
        old = stored.get(key)
        if old is None:
            inserted += 1
            changed.append(occ.first)
            new_keys.add(key)
            writes[key] = occ.final
        elif Decimal(old) != decimal_value(rates[occ.first], occ.first):
            updated += 1
            changed.append(occ.first)
            writes[key] = occ.final
        else:
            unchanged += 1
        for i, did in occ.later:
            if did:
                updated += 1
                changed.append(i)
                writes[key] = occ.final
            else:
                unchanged += 1
    for lkey, i in plan.live.items():
        if lkey in live_held:
            unchanged += 1
        else:
            inserted += 1
            changed.append(i)
    unchanged += plan.live_repeats
    changed.sort()
    return Classified(inserted, updated, unchanged, tuple(changed), writes, frozenset(new_keys))
