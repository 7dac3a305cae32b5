"""At-least-once delivery with idempotent keys, against the real validator and rates services."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest

from kurs.collector.v1 import collector_pb2, collector_pb2_grpc
from kurs_collector import server as collector_server
from kurs_collector.delivery import Delivered, Deliverer
from kurs_collector.settings import CollectorSettings
from kurs_common.observation import Observation
from kurs_rates.server import RatesServer
from kurs_validator import server as validator_server
from kurs_validator.server import ValidatorServer
from kurs_validator.settings import ValidatorSettings
from support.fake_exchanges import FakeHttpServer, FakeResponse, refused_port

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"
HIST_90D = "/stats/eurofxref/eurofxref-hist-90d.xml"
SPAN = (dt.date(2025, 1, 13), dt.date(2025, 1, 15))
EXPECTED = {
    dt.date(2025, 1, 13): {
        "USD": "1.0245",
        "JPY": "161.23",
        "GBP": "0.83758",
        "CHF": "0.9376",
        "CAD": "1.4741",
    },
    dt.date(2025, 1, 14): {
        "USD": "1.0309",
        "JPY": "162.63",
        "GBP": "0.84518",
        "CHF": "0.9407",
        "CAD": "1.4791",
    },
    dt.date(2025, 1, 15): {
        "USD": "1.0316",
        "JPY": "161.61",
        "GBP": "0.84248",
        "CHF": "0.9412",
        "CAD": "1.4813",
    },
}


def sources_toml(path: Path, body: str, *, state_dir: Path) -> Path:
    path.write_text(f'live = true\nstate_dir = "{state_dir}"\n{body}')
    result: Path = path
    return result


class Recording(Deliverer):
    """The same delivery as `inner`, keeping every acknowledgement."""

    def __init__(self, inner: Deliverer) -> None:
        super().__init__(
            inner.stub,
            attempts=inner.attempts,
            backoff=inner.backoff,
            backoff_max=inner.backoff_max,
            timeout=inner.timeout,
        )
        self.results: list[Delivered] = []

    async def deliver(self, batch: Sequence[Observation]) -> Delivered:
        result = await super().deliver(batch)
        self.results.append(result)
        return result


class CrashAfter(Recording):
    """A Deliverer that dies (like a killed process) right after `n` acknowledged batches."""

    def __init__(self, inner: Deliverer, n: int) -> None:
        super().__init__(inner)
        self.n = n

    async def deliver(self, batch: Sequence[Observation]) -> Delivered:
        result = await super().deliver(batch)
        if len(self.results) >= self.n:
            raise asyncio.CancelledError("collector killed")
        return result


@pytest.fixture
async def provider() -> AsyncIterator[FakeHttpServer]:
    async with FakeHttpServer() as server:
        server.route(HIST_90D, FakeResponse(body=(FIXTURES / "ecb" / "eurofxref-hist-90d.xml").read_bytes()))
        server.route(
            "/service/data/EXR/D..EUR.SP00.A",
            FakeResponse(body=(FIXTURES / "ecb" / "exr-range.csv").read_bytes()),
        )
        yield server


def settings_for(validator_port: int, sources_file: Path, **extra: object) -> CollectorSettings:
    return CollectorSettings(
        address="127.0.0.1:0",
        validator_address=f"127.0.0.1:{validator_port}",
        ecb_history_enabled=False,
        sources_file=sources_file,
        delivery_attempts=40,
        delivery_backoff_seconds=0.05,
        delivery_backoff_max_seconds=0.2,
        delivery_timeout_seconds=10,
        **extra,  # type: ignore[arg-type]
    )


def ecb_90d_sources(tmp_path: Path, provider: FakeHttpServer) -> Path:
    body = f'[sources.ecb-90d]\nenabled = true\nbase_url = "{provider.url}"\n'
    body += "retries = 2\nbackoff_seconds = 0.01\n"
    return sources_toml(tmp_path / "sources.toml", body, state_dir=tmp_path / "state")


async def stored(rates: RatesServer) -> dict[dt.date, dict[str, str]]:
    return await rates.store.series("ecb", *SPAN)


async def test_collector_killed_mid_batch_loses_and_doubles_nothing(
    rates_service: RatesServer, validator_service: ValidatorServer, provider: FakeHttpServer, tmp_path: Path
) -> None:
    sources = ecb_90d_sources(tmp_path, provider)
    first = await collector_server.start(settings_for(validator_service.port, sources, autostart=False))
    try:
        crashing = CrashAfter(first.runner.deliverer, 1)
        first.runner.deliverer = crashing
        with pytest.raises(asyncio.CancelledError):
            await first.runner.run("ecb-90d")
    finally:
        await first.stop(0)
    # Killed after the first day was acknowledged: that day is stored, the rest is not.
    assert await stored(rates_service) == {dt.date(2025, 1, 13): EXPECTED[dt.date(2025, 1, 13)]}
    assert crashing.results[0].inserted == 10  # 5 ECB figures as published + 5 blended
    # Nothing was recorded as done, so the restarted collector fetches and delivers it all again.
    assert not (tmp_path / "state" / "ecb-90d.json").exists()

    second = await collector_server.start(settings_for(validator_service.port, sources, autostart=False))
    try:
        recording = Recording(second.runner.deliverer)
        second.runner.deliverer = recording
        await second.runner.run("ecb-90d")
    finally:
        await second.stop(0)
    assert await stored(rates_service) == EXPECTED
    # The repeated day was a no-op downstream (idempotent keys); the others were new.
    assert [(r.inserted, r.updated) for r in recording.results] == [(0, 0), (10, 0), (10, 0)]
    assert json.loads((tmp_path / "state" / "ecb-90d.json").read_text())["last_day"] == "2025-01-15"
    assert len(provider.hits(HIST_90D)) == 2


async def test_validator_killed_mid_run_is_waited_for(
    rates_service: RatesServer, validator_service: ValidatorServer, provider: FakeHttpServer, tmp_path: Path
) -> None:
    port = validator_service.port
    await validator_service.stop(0)  # the validator dies
    sources = ecb_90d_sources(tmp_path, provider)
    collector = await collector_server.start(settings_for(port, sources, autostart=False))
    replacement: ValidatorServer | None = None
    try:
        run = asyncio.create_task(collector.runner.run("ecb-90d"))
        while not provider.hits(HIST_90D):  # noqa: ASYNC110 - polling a fake server's log
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert not run.done()  # holding the batch, retrying
        assert await stored(rates_service) == {}
        replacement = await validator_server.start(
            ValidatorSettings(
                address=f"127.0.0.1:{port}",
                rates_address=f"127.0.0.1:{rates_service.port}",
                database_url=f"sqlite:///{tmp_path / 'validator2.sqlite3'}",
            )
        )
        result = await asyncio.wait_for(run, 30)
    finally:
        await collector.stop(0)
        if replacement is not None:
            await replacement.stop(0)
    assert result.observations == 15
    assert await stored(rates_service) == EXPECTED


async def test_unreachable_source_is_down_while_the_mesh_serves(
    rates_service: RatesServer, validator_service: ValidatorServer, provider: FakeHttpServer, tmp_path: Path
) -> None:
    body = (
        f'[sources.ecb-90d]\nenabled = true\nbase_url = "{provider.url}"\n'
        f'[sources.boc]\nenabled = true\nbase_url = "http://127.0.0.1:{refused_port()}"\n'
        "retries = 1\nbreaker_failures = 1\nbreaker_reset_seconds = 3600\n"
        f'[sources.kraken]\nenabled = false\nbase_url = "http://127.0.0.1:{refused_port()}"\n'
    )
    sources = sources_toml(tmp_path / "sources.toml", body, state_dir=tmp_path / "state")
    collector = await collector_server.start(settings_for(validator_service.port, sources))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{collector.port}") as channel:
            stub = collector_pb2_grpc.CollectorServiceStub(channel)
            for _ in range(500):
                reply = await stub.ListSources(collector_pb2.ListSourcesRequest())
                by_id = {s.id: s for s in reply.sources}
                if (
                    by_id["boc"].state == collector_pb2.SOURCE_STATE_DOWN
                    and by_id["ecb-90d"].state == collector_pb2.SOURCE_STATE_HEALTHY
                ):
                    break
                await asyncio.sleep(0.02)
            boc, ecb, kraken = by_id["boc"], by_id["ecb-90d"], by_id["kraken"]
            assert boc.state == collector_pb2.SOURCE_STATE_DOWN
            assert boc.circuit == collector_pb2.CIRCUIT_STATE_OPEN
            assert "ConnectError" in boc.last_error
            assert boc.HasField("last_error_at")
            assert boc.publications_missed >= 1
            assert boc.mode == "scheduled"
            assert boc.schedule == "16:30 ET on Canadian business days"
            assert ecb.state == collector_pb2.SOURCE_STATE_HEALTHY
            assert ecb.last_day == "2025-01-15"
            assert ecb.observations_delivered == 15
            assert ecb.circuit == collector_pb2.CIRCUIT_STATE_CLOSED
            assert ecb.HasField("next_run_at")
            assert kraken.state == collector_pb2.SOURCE_STATE_DISABLED
            assert kraken.disabled_reason == "enabled = false in the sources file"
            # CollectNow on the down source answers UNAVAILABLE with the reason, and nothing crashes.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CollectNow(collector_pb2.CollectNowRequest(source_id="boc"))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "circuit open" in (caught.value.details() or "")
        # The rates service keeps serving what was delivered.
        assert await stored(rates_service) == EXPECTED
    finally:
        await collector.stop(0)


async def test_backfill_command(
    rates_service: RatesServer, validator_service: ValidatorServer, provider: FakeHttpServer, tmp_path: Path
) -> None:
    body = f'[sources.ecb-sdmx]\nenabled = true\nbase_url = "{provider.url}"\n'
    sources = sources_toml(tmp_path / "sources.toml", body, state_dir=tmp_path / "state")
    env = {
        **os.environ,
        "KURS_COLLECTOR_SOURCES_FILE": str(sources),
        "KURS_COLLECTOR_VALIDATOR_ADDRESS": f"127.0.0.1:{validator_service.port}",
        "KURS_COLLECTOR_LOG_LEVEL": "WARNING",
    }
    args = [
        sys.executable,
        "-m",
        "kurs_collector",
        "backfill",
        "--source",
        "ecb-sdmx",
        "--from",
        "2025-01-13",
    ]

    async def backfill(*extra: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *args, *extra, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = await backfill("--to", "2025-01-14")
    assert code == 0, err
    assert json.loads(out) == {
        "source": "ecb-sdmx",
        "days": 2,
        "observations": 4,
        "accepted": 4,
        "rejected": 0,
        "refused_by_collector": 0,
    }
    assert provider.requests[-1].query == {
        "startPeriod": "2025-01-13",
        "endPeriod": "2025-01-14",
        "format": "csvdata",
    }
    days = await rates_service.store.series("ecb", *SPAN)
    assert days == {
        dt.date(2025, 1, 13): {"JPY": "161.23", "USD": "1.0245"},
        dt.date(2025, 1, 14): {"JPY": "162.63", "USD": "1.0309"},
    }
    code, out, err = await backfill("--to", "2025-01-14")  # again: idempotent
    assert code == 0, err
    assert await rates_service.store.series("ecb", *SPAN) == days
    code, out, err = await backfill("--to", "2025-01-01")
    assert code == 1
    assert "--from 2025-01-13 is after --to 2025-01-01" in err


async def test_collector_process_sigkilled_while_holding_a_batch(
    rates_service: RatesServer, validator_service: ValidatorServer, provider: FakeHttpServer, tmp_path: Path
) -> None:
    """A real collector process, SIGKILLed while it holds an undelivered batch, loses nothing."""
    port = validator_service.port
    await validator_service.stop(0)  # deliveries now wait and retry
    sources = ecb_90d_sources(tmp_path, provider)
    env = {
        **os.environ,
        "KURS_COLLECTOR_ADDRESS": "127.0.0.1:0",
        "KURS_COLLECTOR_VALIDATOR_ADDRESS": f"127.0.0.1:{port}",
        "KURS_COLLECTOR_SOURCES_FILE": str(sources),
        "KURS_COLLECTOR_ECB_HISTORY_ENABLED": "false",
        "KURS_COLLECTOR_DELIVERY_BACKOFF_SECONDS": "0.05",
        "KURS_COLLECTOR_DELIVERY_BACKOFF_MAX_SECONDS": "0.2",
        "KURS_COLLECTOR_DELIVERY_ATTEMPTS": "1000",
        "KURS_COLLECTOR_DELIVERY_TIMEOUT_SECONDS": "2",
        "KURS_COLLECTOR_LOG_LEVEL": "ERROR",
    }

    async def spawn() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kurs_collector", env=env, stderr=asyncio.subprocess.DEVNULL
        )

    first = await spawn()
    try:
        while not provider.hits(HIST_90D):  # noqa: ASYNC110 - polling a fake server's log
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # fetched, parsed, now retrying the first batch against a dead validator
        assert first.returncode is None
    finally:
        first.kill()
        await first.wait()
    assert await stored(rates_service) == {}
    assert not (tmp_path / "state" / "ecb-90d.json").exists()  # nothing recorded as done

    replacement = await validator_server.start(
        ValidatorSettings(
            address=f"127.0.0.1:{port}",
            rates_address=f"127.0.0.1:{rates_service.port}",
            database_url=f"sqlite:///{tmp_path / 'validator2.sqlite3'}",
        )
    )
    second = await spawn()
    try:
        state_file = tmp_path / "state" / "ecb-90d.json"
        async with asyncio.timeout(60):
            while not state_file.exists():  # noqa: ASYNC110 - waiting for the other process
                await asyncio.sleep(0.05)
        assert json.loads(state_file.read_text())["last_day"] == "2025-01-15"
        assert await stored(rates_service) == EXPECTED
    finally:
        second.terminate()
        await second.wait()
        await replacement.stop(0)
    assert len(provider.hits(HIST_90D)) == 2  # fetched again after the kill: unconditional, nothing skipped
