"""Restore drill: pgBackRest full backup + WAL archive, point-in-time restore into a fresh cluster.

A throwaway PostgreSQL 15 cluster gets Kurs's schema and real ECB history through the rates
service's own store (kurs_rates.pg_store: migrations, COPY + merge), WAL archived by pgBackRest's
archive_command. Full backup; more writes; a timestamp T; more writes (new days, revised
figures, live ticks). pgBackRest restores to T into a FRESH data dir, PostgreSQL replays the
archive and promotes; the restored rows must equal the original's as of T: a row count and an
md5 per (table, source, day), and the series read back through the store.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kurs_rates.model import Rate, RateKind
from kurs_rates.pg_store import PostgresRateStore

from .pgcluster import PG_BIN, Checksums, Cluster, as_postgres, free_port, make_dir, render, scratch_dir

pytestmark = pytest.mark.regions

BUDGET_SECONDS = 120.0
STANZA = "kurs"


def ecb_rates(history_csv: str, first: dt.date, last: dt.date) -> list[Rate]:
    """The ECB's own figures (per EUR, as published) between two dates."""
    out = []
    reader = csv.reader(io.StringIO(history_csv))
    header = next(reader)
    for row in reader:
        day = dt.date.fromisoformat(row[0])
        if not first <= day <= last:
            continue
        at = dt.datetime.combine(day, dt.time(14, 15), dt.UTC)
        for code, value in zip(header[1:], row[1:], strict=False):
            if code and value and value != "N/A":
                out.append(Rate("ecb", RateKind.REFERENCE, code, value, day, at, ("ecb",), base="EUR"))
    return out


def live_ticks(start: dt.datetime, count: int) -> list[Rate]:
    return [
        Rate(
            "replay",
            RateKind.LIVE,
            "USD",
            f"1.{1000 + i:04d}",
            (start + dt.timedelta(seconds=i)).date(),
            start + dt.timedelta(seconds=i),
            ("replay",),
            base="EUR",
        )
        for i in range(count)
    ]


async def write_in_batches(dsn: str, rates: list[Rate], per_batch: int = 400) -> int:
    store = PostgresRateStore(dsn, statement_timeout=30.0)
    await store.open()
    try:
        changed = 0
        for i in range(0, len(rates), per_batch):
            result = await store.write(rates[i : i + per_batch])
            changed += result.inserted + result.updated
        return changed
    finally:
        await store.close()


async def read_series(dsn: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
    store = PostgresRateStore(dsn, apply_migrations=False)
    await store.open()
    try:
        return await store.series("ecb", start, end)
    finally:
        await store.close()


@pytest.fixture
def scratch() -> Iterator[Path]:
    root = scratch_dir("kurs-restore-")
    clusters: list[Cluster] = []
    yield root
    for data in root.glob("*/PG_VERSION"):
        clusters.append(Cluster(data.parent, 0, root))
    for cluster in clusters:
        cluster.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


def total(sums: Checksums) -> int:
    return sum(n for n, _ in sums.values())


def test_point_in_time_restore_into_a_fresh_cluster_equals_the_original(
    history_csv: str, scratch: Path
) -> None:
    started = time.monotonic()
    logs = make_dir(scratch / "log")
    repo = make_dir(scratch / "repo")
    conf = scratch / "pgbackrest.conf"
    source = Cluster(scratch / "source", free_port(), make_dir(scratch / "sock-source", 0o755))
    render(
        "pgbackrest.conf",
        conf,
        repo=repo,
        data=source.data,
        port=source.port,
        socket=source.socket_dir,
        logs=logs,
    )
    backrest = ["pgbackrest", f"--config={conf}", f"--stanza={STANZA}"]
    source.initdb(
        "archive_mode = on\n"
        f"archive_command = 'pgbackrest --config={conf} --stanza={STANZA} archive-push %p'\n"
        "archive_timeout = 60\n"
    )
    source.start()
    source.psql("CREATE DATABASE kurs", db="postgres")

    # 1. Schema and a first load through the rates store, then a full backup.
    phase1 = ecb_rates(history_csv, dt.date(2021, 1, 1), dt.date(2022, 12, 31))
    asyncio.run(write_in_batches(source.dsn, phase1))
    as_postgres([*backrest, "stanza-create"])
    as_postgres([*backrest, "check"])
    t0 = time.monotonic()
    as_postgres([*backrest, "--type=full", "backup"], timeout=90)
    backup_seconds = time.monotonic() - t0
    backup_done = time.time()

    # 2. More writes after the backup (only in the WAL archive), then the target time T.
    phase2 = ecb_rates(history_csv, dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    phase2 += live_ticks(dt.datetime(2023, 12, 29, 10, 0, tzinfo=dt.UTC), 300)
    asyncio.run(write_in_batches(source.dsn, phase2))
    # pgBackRest restores to T only from a backup whose stop time (whole seconds) is before T: on a
    # fast machine phase 2 can end within the backup's last second, so T waits past it.
    time.sleep(max(0.0, math.ceil(backup_done) + 1.1 - time.time()))
    target = source.psql("SET TimeZone = 'UTC'; SELECT clock_timestamp()::text")
    at_target = source.checksums()
    series_at_target = asyncio.run(read_series(source.dsn, dt.date(2021, 1, 1), dt.date(2024, 12, 31)))
    time.sleep(1.1)  # every later commit is stamped after T

    # 3. Writes after T: a new year, revisions of 2023 figures, more live ticks.
    phase3 = ecb_rates(history_csv, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    revised = [
        Rate(r.source, r.kind, r.currency, f"{r.value}1", r.day, r.observed_at, r.sources, base=r.base)
        for r in phase2[:500]
        if r.kind is RateKind.REFERENCE
    ]
    phase3 += revised + live_ticks(dt.datetime(2024, 1, 2, 10, 0, tzinfo=dt.UTC), 300)
    changed_after = asyncio.run(write_in_batches(source.dsn, phase3))
    as_postgres([*backrest, "check"])  # switches WAL and waits until the segment is archived
    after = source.checksums()
    assert changed_after == len(phase3)
    assert after != at_target, "the writes after T must change the figures, or the drill proves nothing"

    # 4. Restore to T into a fresh data dir and let PostgreSQL replay the archive and promote.
    fresh = Cluster(make_dir(scratch / "restored"), free_port(), make_dir(scratch / "sock-restored", 0o755))
    t0 = time.monotonic()
    as_postgres(
        [
            *backrest,
            f"--pg1-path={fresh.data}",
            "--type=time",
            f"--target={target}",
            "--target-action=promote",
            "--archive-mode=off",
            "restore",
        ],
        timeout=90,
    )
    fresh.start()
    fresh.wait_promoted()
    restore_seconds = time.monotonic() - t0
    restored = fresh.checksums()
    restored_series = asyncio.run(read_series(fresh.dsn, dt.date(2021, 1, 1), dt.date(2024, 12, 31)))
    elapsed = time.monotonic() - started

    days = {(s, d) for (_, s, d) in at_target}
    mismatched = sorted(k for k in at_target.keys() | restored.keys() if at_target.get(k) != restored.get(k))
    info = as_postgres([*backrest, "--output=text", "info"])
    print(
        f"\nrestore drill: {total(at_target)} rows at T over {len(days)} (source, day) pairs; "
        f"{total(after)} rows at the end ({total(after) - total(at_target)} inserted after T, "
        f"{len(revised)} revised after T)\n"
        f"  restored to T={target}: {total(restored)} rows, {len(restored)} checksums, "
        f"{len(mismatched)} mismatched; series through the store: {len(restored_series)} days\n"
        f"  full backup {backup_seconds:.1f}s, restore + WAL replay + promote {restore_seconds:.1f}s, "
        f"drill {elapsed:.1f}s (budget {BUDGET_SECONDS:.0f}s); PostgreSQL {PG_BIN}\n"
        + "\n".join("  " + line for line in info.strip().splitlines())
    )
    assert not mismatched, f"restored figures differ for {mismatched[:10]}"
    assert restored == at_target
    assert restored_series == series_at_target
    assert dt.date(2024, 1, 2) not in restored_series
    assert elapsed < BUDGET_SECONDS
