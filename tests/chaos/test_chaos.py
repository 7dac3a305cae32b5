"""`make chaos`: faults one at a time under steady load, through the real entrypoints (#17).

The mesh (tests/chaos/mesh.py): rates, validator and gateway as processes, on an own PostgreSQL
cluster and an own redis-server. The load (tests/chaos/load.py): a writer submitting live ticks to
the validator with a ledger of every acknowledged batch, readers of the gateway's `/rates/latest`,
a WebSocket stream watcher. For each fault, printed as one table row and asserted:

* read errors: `/rates/latest` (the gateway's snapshot) and `/rates/historical` of a seeded day
  (stale-if-error through an outage: column `stale`) are cached reads, so 0 for every fault but the
  gateway's own kill (reported, not asserted: nothing answers on its port meanwhile);
* recovery: seconds from the restart until a batch acknowledged after it shows on the gateway;
* rows lost: acknowledged ledger rows missing from the store once the validator caught up (0);
* sequences: every stream message's sequence is above (updates) or not below (snapshots,
  heartbeats) the previous one, across every reconnect with since=.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
import pytest_asyncio

from kurs.validator.v1 import validator_pb2_grpc

from . import load as chaos_load
from .load import Load, reader, visible_after, watcher, writer
from .mesh import RATES_HEALTH, ChaosMesh, grpc_serving, missing, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="module")]

OUTAGE = 3.0  # seconds each fault lasts under load before the restart
RECOVERY_LIMIT = 30.0
CATCH_UP = 30.0  # how long the validator's outbox may take to drain after a fault


@dataclass
class Row:
    fault: str
    reads: int
    read_errors: int
    writes_acked: int
    write_errors: int
    recovery: float
    rates_start: float | None
    acked_rows: int
    lost: int
    messages: int
    sequence_faults: int
    stale_reads: int = 0
    first_read_error: str = ""


@dataclass
class Harness:
    mesh: ChaosMesh
    load: Load
    tasks: list[asyncio.Task[None]]
    rows: list[Row]


async def missing_rows(mesh: ChaosMesh, load: Load, keys: list[chaos_load.LedgerKey]) -> int:
    """Acknowledged rows not (or not exactly) in the store."""
    conn = await asyncpg.connect(mesh.pg.dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT currency, observed_at, value FROM live_rates WHERE source = $1", chaos_load.SOURCE
        )
    finally:
        await conn.close()
    stored = {(r["currency"], r["observed_at"]): r["value"] for r in rows}
    return sum(1 for key in keys if stored.get(key) != load.ledger[key][0])


async def lost_after_catch_up(mesh: ChaosMesh, load: Load, keys: list[chaos_load.LedgerKey]) -> int:
    deadline = time.monotonic() + CATCH_UP
    lost = await missing_rows(mesh, load, keys)
    while lost and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        lost = await missing_rows(mesh, load, keys)
    return lost


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness() -> AsyncIterator[Harness]:
    absent = missing()
    assert not absent, f"missing {absent}: run `make regions-deps` / `make services`"
    mesh = ChaosMesh()
    load = Load()
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(mesh.up)
        async with grpc.aio.insecure_channel(mesh.addresses["validator"]) as channel:
            stub = validator_pb2_grpc.ValidatorServiceStub(channel)
            await stub.SubmitObservations(chaos_load.reference_fixing(), timeout=30)
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
        tasks.append(asyncio.create_task(writer(load, mesh.addresses["validator"], start)))
        await asyncio.to_thread(wait_until, lambda: len(load.ledger) > 0, "the first batch acknowledged", 30)
        await asyncio.to_thread(mesh.start, "gateway")
        ws = f"ws://{mesh.addresses['gateway']}/ws/rates/stream?base=EUR&symbols=USD,GBP,JPY"
        tasks.append(asyncio.create_task(reader(load, mesh.gateway_url)))
        tasks.append(asyncio.create_task(watcher(load, ws)))
        await visible_after(load, mesh.gateway_url, time.monotonic(), RECOVERY_LIMIT)
        # The seeded day answered once before any fault (what the gateway can answer stale).
        await asyncio.to_thread(wait_until, lambda: load.history_ok > 0, "a historical answer", 30)
        yield Harness(mesh, load, tasks, [])
    finally:
        load.stop.set()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.to_thread(mesh.down)
        mesh.remove()


async def run_fault(
    h: Harness,
    name: str,
    inject: Callable[[], None],
    restart: Callable[[], Awaitable[float | None]],
    *,
    reads_may_fail: bool = False,
) -> Row:
    """Inject a fault, keep the load on for OUTAGE seconds, restart, measure, check the ledger."""
    load = h.load
    began = time.monotonic()
    messages_before, faults_before = len(load.sequences), len(load.sequence_faults)
    stale_before = load.stale_reads
    await asyncio.to_thread(inject)
    await asyncio.sleep(OUTAGE)
    restarted = time.monotonic()
    rates_start = await restart()
    recovery = await visible_after(load, h.mesh.gateway_url, restarted, RECOVERY_LIMIT)
    await asyncio.sleep(0.5)  # a little steady state after the recovery
    ended = time.monotonic()
    keys = [k for k, (_, at) in load.ledger.items() if began <= at <= ended]
    lost = await lost_after_catch_up(h.mesh, load, keys)
    reads, read_errors, first = load.window("read", began, ended)
    writes, write_errors, _ = load.window("write", began, ended)
    row = Row(
        name,
        reads,
        read_errors,
        writes - write_errors,
        write_errors,
        recovery,
        rates_start,
        len(keys),
        lost,
        len(load.sequences) - messages_before,
        len(load.sequence_faults) - faults_before,
        load.stale_reads - stale_before,
        first,
    )
    h.rows.append(row)
    print_table(h.rows)
    assert lost == 0, f"{name}: {lost} acknowledged rows missing from the store"
    assert row.sequence_faults == 0, f"{name}: {load.sequence_faults[faults_before:]}"
    assert row.acked_rows > 0, f"{name}: no batch acknowledged around the fault"
    if not reads_may_fail:
        assert read_errors == 0, f"{name}: {read_errors} failed cached reads, first: {first}"
    return row


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'fault':<34} {'reads':>6} {'r.err':>6} {'w.ack':>6} {'w.err':>6} {'recov s':>8} "
        f"{'rates up s':>10} {'acked rows':>10} {'lost':>5} {'stream':>7} {'seq bad':>7} {'stale':>6}"
    )
    lines = ["", "chaos: one fault at a time under load (loopback only)", header, "-" * len(header)]
    for r in rows:
        start = f"{r.rates_start:.2f}" if r.rates_start is not None else "-"
        lines.append(
            f"{r.fault:<34} {r.reads:>6} {r.read_errors:>6} {r.writes_acked:>6} {r.write_errors:>6} "
            f"{r.recovery:>8.2f} {start:>10} {r.acked_rows:>10} {r.lost:>5} {r.messages:>7} "
            f"{r.sequence_faults:>7} {r.stale_reads:>6}"
        )
    print("\n".join(lines), flush=True)


def restart_services(h: Harness, *names: str) -> Callable[[], Awaitable[float | None]]:
    async def restart() -> float | None:
        took: dict[str, float] = {}
        for name in names:
            took[name] = await asyncio.to_thread(h.mesh.start, name)
        return took.get("rates")

    return restart


async def test_kill_rates(harness: Harness) -> None:
    rates = harness.mesh.services["rates"]
    await run_fault(harness, "kill -9 rates", rates.kill, restart_services(harness, "rates"))


async def test_kill_validator(harness: Harness) -> None:
    await run_fault(
        harness,
        "kill -9 validator",
        harness.mesh.services["validator"].kill,
        restart_services(harness, "validator"),
    )


async def test_kill_gateway(harness: Harness) -> None:
    await run_fault(
        harness,
        "kill -9 gateway",
        harness.mesh.services["gateway"].kill,
        restart_services(harness, "gateway"),
        reads_may_fail=True,
    )


async def test_kill_redis(harness: Harness) -> None:
    mesh = harness.mesh

    def kill() -> None:
        assert mesh.redis is not None
        mesh.redis.kill()

    async def restart() -> float | None:
        await asyncio.to_thread(mesh.start_redis)
        await asyncio.to_thread(
            wait_until,
            lambda: grpc_serving(mesh.addresses["rates"], "kurs.rates.redis"),
            "rates reports Redis SERVING again",
            RECOVERY_LIMIT,
        )
        return None

    await run_fault(harness, "kill -9 redis (comes back empty)", kill, restart)


async def test_kill_postgres(harness: Harness) -> None:
    mesh = harness.mesh

    async def restart() -> float | None:
        await asyncio.to_thread(mesh.start_pg)
        return None

    await run_fault(harness, "crash postgresql", mesh.crash_pg, restart)


async def test_postgres_then_rates(harness: Harness) -> None:
    """The original data-loss case: PostgreSQL down, rates killed during the outage."""
    mesh = harness.mesh

    def inject() -> None:
        mesh.crash_pg()
        time.sleep(OUTAGE / 2)
        mesh.services["rates"].kill()

    async def restart() -> float | None:
        await asyncio.to_thread(mesh.start_pg)
        took = await asyncio.to_thread(mesh.start, "rates")
        assert await asyncio.to_thread(grpc_serving, mesh.addresses["rates"], RATES_HEALTH)
        return took

    await run_fault(harness, "crash postgresql, kill rates", inject, restart)
