"""PostgreSQL's write path: one batch COPYed into a temporary table, merged in one transaction.

The batch is planned and classified by kurs_rates.writes, the same rules as the embedded store:
`merge_batch` COPYs it into `kurs_in` (each row marked with whether it is the first occurrence of
its key, and for a reference key the row its last change in the batch stores), appends every
row to the raw log (`rate_observations`), merges the reference keys with INSERT ... ON CONFLICT
(returning the values stored before, for the classifier), and inserts live ticks once (returning
the new ones, and keeping `live_latest`). Writers of a source are serialised across replicas by
an advisory lock, so "what was stored before" is exact. The caller (PostgresRateStore.write)
runs it in one transaction with statement timeouts and retries (docs/storage.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kurs_common.rate import Rate
from kurs_rates.model import WriteResult
from kurs_rates.writes import BatchPlan, LiveKey, RefKey, classify

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


_CREATE_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS kurs_in (
    kind text, source text, base text, currency text, day date, observed_at timestamptz, value text,
    sources text[], replay boolean, flag text,
    ord integer,            -- index in the batch
    is_key boolean,         -- first occurrence of its key in the batch: the row that is merged
    forced boolean,         -- a later occurrence changed the value: write even if equal to the DB
    w_value text, w_observed_at timestamptz, w_sources text[], w_flag text  -- what to store for the key
) ON COMMIT DELETE ROWS
"""

_COPY_COLUMNS = (
    "kind, source, base, currency, day, observed_at, value, sources, replay, flag, ord, is_key, forced, "
    "w_value, w_observed_at, w_sources, w_flag"
)

_RAW = """
INSERT INTO rate_observations (source, kind, base, currency, value, day, observed_at, sources, replay, flag)
SELECT source, kind, base, currency, value, day, observed_at, sources, replay, COALESCE(flag, '') FROM kurs_in
"""

_MERGE_REFERENCE = """
WITH cls AS (
    SELECT i.*, r.value AS old_value
    FROM kurs_in i
    LEFT JOIN reference_rates r
        ON r.source = i.source AND r.day = i.day AND r.base = i.base AND r.currency = i.currency
    WHERE i.kind = 'reference' AND i.is_key
), written AS (
    INSERT INTO reference_rates AS r (source, day, base, currency, value, observed_at, sources, flag)
    SELECT source, day, base, currency, COALESCE(w_value, value), COALESCE(w_observed_at, observed_at),
           COALESCE(w_sources, sources), COALESCE(w_flag, flag, '')
    FROM cls
    WHERE old_value IS NULL OR forced OR old_value::numeric <> value::numeric
    ON CONFLICT (source, day, base, currency) DO UPDATE
        SET value = EXCLUDED.value, observed_at = EXCLUDED.observed_at, sources = EXCLUDED.sources,
            flag = EXCLUDED.flag
    RETURNING 1
), ranges AS (
    INSERT INTO reference_ranges AS g (source, base, currency, first_day, last_day)
    SELECT source, base, currency, min(day), max(day) FROM cls GROUP BY source, base, currency
    ON CONFLICT (source, base, currency) DO UPDATE
        SET first_day = LEAST(g.first_day, EXCLUDED.first_day),
            last_day = GREATEST(g.last_day, EXCLUDED.last_day)
    RETURNING 1
)
SELECT ord, old_value FROM cls WHERE old_value IS NOT NULL
"""

_MERGE_LIVE = """
WITH ins AS (
    INSERT INTO live_rates (source, currency, observed_at, day, value, sources, replay)
    SELECT source, currency, observed_at, day, value, sources, replay FROM kurs_in
    WHERE kind = 'live' AND is_key
    ON CONFLICT DO NOTHING
    RETURNING source, currency, observed_at, day, value, sources, replay
), newest AS (
    INSERT INTO live_latest AS l (currency, source, observed_at, day, value, sources, replay)
    SELECT DISTINCT ON (currency) currency, source, observed_at, day, value, sources, replay
    FROM ins ORDER BY currency, observed_at DESC, source COLLATE "C"
    ON CONFLICT (currency) DO UPDATE
        SET source = EXCLUDED.source, observed_at = EXCLUDED.observed_at, day = EXCLUDED.day,
            value = EXCLUDED.value, sources = EXCLUDED.sources, replay = EXCLUDED.replay
        WHERE EXCLUDED.observed_at > l.observed_at
           OR (EXCLUDED.observed_at = l.observed_at AND EXCLUDED.source COLLATE "C" < l.source COLLATE "C")
    RETURNING 1
)
SELECT source, currency, observed_at FROM ins
"""


def _pg_array(items: Sequence[str]) -> str:
    """A text[] literal: every element double-quoted, with backslash and quote escaped."""
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"


def _csv_rows(rates: Sequence[Rate], keys: dict[int, tuple[bool, Rate]]) -> bytes:
    """The batch as CSV for COPY kurs_in. `keys` maps the index of each key row to (forced, row to store).

    Formatting is memoised per distinct timestamp and source list: a history load has a few
    thousand of each for hundreds of thousands of rows.
    """
    stamps: dict[dt.datetime, str] = {}
    arrays: dict[tuple[str, ...], str] = {}

    def stamp(value: dt.datetime) -> str:
        text = stamps.get(value)
        if text is None:
            text = stamps[value] = value.isoformat()
        return text

    def array(value: tuple[str, ...]) -> str:
        text = arrays.get(value)
        if text is None:
            text = arrays[value] = _pg_array(value)
        return text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    plain: tuple[object, ...] = ("f", "f", None, None, None, None)
    for i, r in enumerate(rates):
        key = keys.get(i)
        if key is None:
            tail = plain
        else:
            forced, w = key
            if w is r:
                tail = ("t", "t" if forced else "f", None, None, None, None)
            else:
                tail = ("t", "t" if forced else "f", w.value, stamp(w.observed_at), array(w.sources), w.flag)
        writer.writerow(
            (
                r.kind.value,
                r.source,
                r.base,
                r.currency,
                r.day.isoformat(),
                stamp(r.observed_at),
                r.value,
                array(r.sources),
                "t" if r.replay else "f",
                r.flag,
                i,
                *tail,
            )
        )
    return out.getvalue().encode()


def partition_years(rates: Sequence[Rate], plan: BatchPlan) -> dict[str, set[int]]:
    """The yearly partitions a batch writes into, per partitioned table."""
    return {
        "reference_rates": {key[1].year for key in plan.reference},
        "live_rates": {key[2].year for key in plan.live},
    }


async def merge_batch(
    conn: Conn, rates: Sequence[Rate], plan: BatchPlan, seconds: float
) -> tuple[dict[RefKey, str], set[LiveKey]]:
    """Write a planned batch; return the values stored before for its reference keys and the
    live keys it inserted. Runs inside the caller's transaction."""
    keys: dict[int, tuple[bool, Rate]] = {
        first: (key in plan.final, rates[plan.row_of(key)]) for key, first in plan.reference.items()
    }
    keys.update((i, (False, rates[i])) for i in plan.live.values())
    payload = _csv_rows(rates, keys)
    for source in sorted({r.source for r in rates}):
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"write/{source}", timeout=seconds
        )
    await conn.execute(_CREATE_TEMP, timeout=seconds)
    await conn.copy_to_table(
        "kurs_in",
        source=io.BytesIO(payload),
        format="csv",
        columns=_COPY_COLUMNS.split(", "),
        timeout=seconds,
    )
    if len(rates) > 1000:
        await conn.execute("ANALYZE kurs_in", timeout=seconds)
    await conn.execute(_RAW, timeout=seconds)
    stored: dict[RefKey, str] = {}
    if plan.reference:
        by_first = {first: key for key, first in plan.reference.items()}
        for row in await conn.fetch(_MERGE_REFERENCE, timeout=seconds):
            stored[by_first[row["ord"]]] = row["old_value"]
    inserted: set[LiveKey] = set()
    if plan.live:
        inserted = {
            (row["source"], row["currency"], row["observed_at"].astimezone(dt.UTC))
            for row in await conn.fetch(_MERGE_LIVE, timeout=seconds)
        }
    return stored, inserted


def result_of(
    rates: Sequence[Rate], plan: BatchPlan, stored: dict[RefKey, str], inserted: set[LiveKey]
) -> WriteResult:
    """The batch's classification (kurs_rates.writes.classify) from what merge_batch returned."""
    held = {key for key in plan.live if key not in inserted}
    out = classify(rates, plan, stored, held)
    return WriteResult(out.inserted, out.updated, out.unchanged, tuple(rates[i] for i in out.changed))
