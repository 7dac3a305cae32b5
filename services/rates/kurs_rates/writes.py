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


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What can be told of a batch before the store is asked: its keys and in-batch duplicates.

    Flat maps, not an object per key: a history batch has ten thousand keys, nearly none repeated.
    """

    reference: dict[RefKey, int]  # each reference key's first occurrence, in input order
    later: dict[RefKey, list[tuple[int, bool]]]  # repeated keys: (index, changed the running value)
    final: dict[RefKey, int]  # keys changed within the batch: the index of their last change
    live: dict[LiveKey, int]  # index of each live key's first occurrence
    live_repeats: int  # later occurrences of a live key within the batch

    def row_of(self, key: RefKey) -> int:
        """The index of the rate whose row is stored for `key` when it is written."""
        return self.final.get(key, self.reference[key])


def decimal_value(rate: Rate, index: int) -> Decimal:
    try:
        return Decimal(rate.value)
    except InvalidOperation as exc:
        raise ValueError(f"rates[{index}].value: {rate.value!r} is not a decimal number") from exc


def plan_batch(rates: Sequence[Rate]) -> BatchPlan:
    """Group a batch by key. ValueError (naming the item) when a value is not a decimal."""
    reference: dict[RefKey, int] = {}
    later: dict[RefKey, list[tuple[int, bool]]] = {}
    final: dict[RefKey, int] = {}
    running: dict[RefKey, Decimal] = {}  # repeated keys only
    live: dict[LiveKey, int] = {}
    repeats = 0
    reference_kind = RateKind.REFERENCE
    for i, rate in enumerate(rates):
        value = decimal_value(rate, i)
        if rate.kind is reference_kind:
            key = (rate.source, rate.day, rate.base, rate.currency)
            first = reference.get(key)
            if first is None:
                reference[key] = i
                continue
            current = running.get(key)
            if current is None:
                current = Decimal(rates[first].value)
            occurrences = later.setdefault(key, [])
            if value != current:
                running[key] = value
                final[key] = i
                occurrences.append((i, True))
            else:
                running[key] = current
                occurrences.append((i, False))
        else:
            lkey = live_key(rate)
            if lkey in live:
                repeats += 1
            else:
                live[lkey] = i
    return BatchPlan(reference, later, final, live, repeats)


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
    final = plan.final
    for key, first in plan.reference.items():
        old = stored.get(key)
        if old is None:
            inserted += 1
            changed.append(first)
            new_keys.add(key)
            writes[key] = final.get(key, first)
        elif Decimal(old) != decimal_value(rates[first], first):
            updated += 1
            changed.append(first)
            writes[key] = final.get(key, first)
        else:
            unchanged += 1
    for key, occurrences in plan.later.items():
        for i, did in occurrences:
            if did:
                updated += 1
                changed.append(i)
                writes[key] = final[key]
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
