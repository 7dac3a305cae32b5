"""The embedded store's write path: one batch, one transaction, classified by kurs_rates.writes.

`write_batch` runs inside `BEGIN IMMEDIATE ... COMMIT` on the store's connection, so a batch is
acknowledged only once committed (WAL; docs/storage.md "Writes"). Per batch it:

1. plans the batch (keys, in-batch duplicates, decimal check: kurs_rates.writes.plan_batch);
2. reads the stored values of its reference keys (one range scan per source on the primary key);
3. inserts the first occurrence of each live key, noting the ones already held;
4. classifies (kurs_rates.writes.classify) and writes the reference rows that changed: one
   executemany of prepared tuples for the inserts, one for the updates, one for the ranges.

Text forms repeat across a batch (a history batch has a few dozen distinct days and instants for
ten thousand rows), so each is formatted once per batch, not once per row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import aiosqlite

from kurs_common.rate import Rate
from kurs_rates.model import WriteResult
from kurs_rates.writes import BatchPlan, LiveKey, RefKey, classify, plan_batch

_INSERT_REFERENCE = (
    "INSERT INTO reference_rates (source, day, base, currency, value, observed_at, sources, flag) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_REFERENCE = (
    "UPDATE reference_rates SET value = ?, observed_at = ?, sources = ?, flag = ? "
    "WHERE source = ? AND day = ? AND base = ? AND currency = ?"
)
_RANGES = (
    "INSERT INTO reference_ranges (source, base, currency, first_day, last_day) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, base, currency) DO UPDATE SET "
    "first_day = min(first_day, excluded.first_day), last_day = max(last_day, excluded.last_day)"
)
_INSERT_LIVE = (
    "INSERT INTO live_rates (source, currency, observed_at, day, value, sources, replay) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


class _Texts:
    """Per-batch memo of the text forms of days, instants and source lists."""

    def __init__(self) -> None:
        self.days: dict[dt.date, str] = {}
        self.stamps: dict[dt.datetime, str] = {}
        self.lists: dict[tuple[str, ...], str] = {}

    def day(self, value: dt.date) -> str:
        text = self.days.get(value)
        if text is None:
            text = self.days[value] = value.isoformat()
        return text

    def stamp(self, value: dt.datetime) -> str:
        text = self.stamps.get(value)
        if text is None:
            text = self.stamps[value] = value.astimezone(dt.UTC).isoformat()
        return text

    def sources(self, value: tuple[str, ...]) -> str:
        text = self.lists.get(value)
        if text is None:
            text = self.lists[value] = json.dumps(list(value))
        return text


async def _stored_reference(db: aiosqlite.Connection, plan: BatchPlan, texts: _Texts) -> dict[RefKey, str]:
    """The stored value of each reference key of the batch that has one."""
    spans: dict[str, tuple[dt.date, dt.date]] = {}
    for source, day, _, _ in plan.reference:
        known = spans.get(source)
        spans[source] = (min(day, known[0]), max(day, known[1])) if known else (day, day)
    wanted = plan.reference
    days = {texts.day(day): day for _, day, _, _ in wanted}
    found: dict[RefKey, str] = {}
    for source, (first, last) in spans.items():
        async with db.execute(
            "SELECT day, base, currency, value FROM reference_rates WHERE source = ? AND day BETWEEN ? AND ?",
            (source, texts.day(first), texts.day(last)),
        ) as cur:
            rows = await cur.fetchall()
        for day_text, base, currency, value in rows:
            on = days.get(day_text)
            if on is not None and (key := (source, on, base, currency)) in wanted:
                found[key] = value
    return found


async def _insert_live(
    db: aiosqlite.Connection, rates: Sequence[Rate], plan: BatchPlan, texts: _Texts
) -> set[LiveKey]:
    """Insert the first occurrence of each live key; return the keys the store already held."""
    held: set[LiveKey] = set()
    for key, i in plan.live.items():
        rate = rates[i]
        cur = await db.execute(
            _INSERT_LIVE,
            (
                rate.source,
                rate.currency,
                texts.stamp(rate.observed_at),
                texts.day(rate.day),
                rate.value,
                texts.sources(rate.sources),
                int(rate.replay),
            ),
        )
        if not cur.rowcount:
            held.add(key)
    return held


async def write_batch(db: aiosqlite.Connection, rates: Sequence[Rate]) -> WriteResult:
    """Classify and write one batch; the caller holds the transaction (BEGIN IMMEDIATE/COMMIT).

    ValueError (naming the item) when a value is not a decimal; nothing is written then.
    """
    plan = plan_batch(rates)
    texts = _Texts()
    stored = await _stored_reference(db, plan, texts) if plan.reference else {}
    held = await _insert_live(db, rates, plan, texts) if plan.live else set()
    result = classify(rates, plan, stored, held)
    inserts: list[tuple[str, ...]] = []
    updates: list[tuple[str, ...]] = []
    spans: dict[tuple[str, str, str], tuple[str, str]] = {}
    for key, i in result.writes.items():
        rate = rates[i]
        day = texts.day(rate.day)
        stamp = texts.stamp(rate.observed_at)
        listed = texts.sources(rate.sources)
        if key in result.new_keys:
            inserts.append((rate.source, day, rate.base, rate.currency, rate.value, stamp, listed, rate.flag))
            span_key = (rate.source, rate.base, rate.currency)
            known = spans.get(span_key)
            spans[span_key] = (min(day, known[0]), max(day, known[1])) if known else (day, day)
        else:
            updates.append((rate.value, stamp, listed, rate.flag, rate.source, day, rate.base, rate.currency))
    if inserts:
        await db.executemany(_INSERT_REFERENCE, inserts)
        await db.executemany(_RANGES, [(*key, first, last) for key, (first, last) in spans.items()])
    if updates:
        await db.executemany(_UPDATE_REFERENCE, updates)
    return WriteResult(
        result.inserted, result.updated, result.unchanged, tuple(rates[i] for i in result.changed)
    )
