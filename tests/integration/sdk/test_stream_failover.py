"""stream_rates() across a killed endpoint: the replica serving the stream is stopped while changes
keep arriving through another replica; the caller gets every change exactly once, in events whose
sequences chain without a gap (gRPC), and the same across a killed gateway (REST / WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import Awaitable, Callable

import pytest

from conftest import serve_gateway
from kurs_client import AsyncKursClient, ClientConfig, Endpoint, RateEvent

from .conftest import FIXING2, SdkMesh, accepted, ingest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CODES = sorted(FIXING2)
WAIT = 30.0


def client_config(*endpoints: Endpoint, transport: str = "grpc") -> ClientConfig:
    return ClientConfig(
        endpoints,
        region="eu",
        transport=transport,  # type: ignore[arg-type]
        timeout=3.0,
        attempt_timeout=1.0,
        health_timeout=0.5,
        down_seconds=60.0,  # the killed endpoint stays out of the way
        reconnect_initial=0.02,
    )


async def run_with_a_kill(
    mesh: SdkMesh, config: ClientConfig, kill: Callable[[], Awaitable[None]], minute: int
) -> tuple[list[RateEvent], dict[str, str], int]:
    """Stream; publish one change per currency through replica A (each changes a different
    currency, so none can hide another); kill the stream's endpoint after the 6th change."""
    writer = mesh.replicas[0].port
    base_time = dt.datetime(2026, 10, 30, 16, minute, tzinfo=dt.UTC)
    expected: dict[str, str] = {}
    events: list[RateEvent] = []
    async with AsyncKursClient(config) as client:
        stream = client.stream_rates("EUR", CODES)
        events.append(await asyncio.wait_for(anext(stream), WAIT))
        view = {c: str(r.value) for c, r in events[0].rates.items()}
        last_sequence = 0
        for i, code in enumerate(CODES):
            value = f"{FIXING2[code]}{minute:02d}{i + 1}"  # a new value, digits kept as sent
            expected[code] = value
            at = base_time + dt.timedelta(seconds=i)
            last_sequence = await ingest(writer, accepted(code, value, at, live=True))
            if i == 5:
                await kill()
            await asyncio.sleep(0.01)

        async def until_complete() -> None:
            while any(view.get(c) != v for c, v in expected.items()):
                event = await anext(stream)
                events.append(event)
                view.update({c: str(r.value) for c, r in event.rates.items()})

        await asyncio.wait_for(until_complete(), WAIT)
        await stream.aclose()
    return events, expected, last_sequence


def assert_no_gap_no_duplicate(events: list[RateEvent], expected: dict[str, str], last: int) -> None:
    assert events[0].kind == "snapshot"
    assert not events[0].resumed
    for before, after in itertools.pairwise(events):
        assert after.kind == "update"
        assert after.previous_sequence == before.sequence  # chained: nothing in between is missing
        assert after.sequence > before.sequence
    delivered = [(c, str(r.value)) for e in events[1:] for c, r in e.rates.items()]
    assert sorted(delivered) == sorted(expected.items())  # every change once, nothing else
    assert events[-1].sequence == last


async def test_killing_the_grpc_endpoint_mid_stream_costs_no_update(sdk_mesh: SdkMesh) -> None:
    doomed = await sdk_mesh.start_replica()
    survivor = sdk_mesh.replicas[1]
    config = client_config(
        Endpoint(f"127.0.0.1:{survivor.port}", "us"), Endpoint(f"127.0.0.1:{doomed.port}", "eu")
    )

    async def kill() -> None:
        await doomed.stop(0)

    events, expected, last = await run_with_a_kill(sdk_mesh, config, kill, minute=10)
    assert_no_gap_no_duplicate(events, expected, last)
    assert events[0].endpoint == f"127.0.0.1:{doomed.port}"  # the caller's region first
    after = [e for e in events if e.endpoint == f"127.0.0.1:{survivor.port}"]
    assert after, "the stream never moved to the surviving replica"
    assert after[0].resumed


async def test_killing_the_gateway_mid_stream_costs_no_update(sdk_mesh: SdkMesh) -> None:
    async with contextlib.AsyncExitStack() as doomed_stack:
        doomed = await doomed_stack.enter_async_context(
            serve_gateway(sdk_mesh.replicas[1].port, 0, heartbeat_seconds=1)
        )
        config = client_config(Endpoint(sdk_mesh.gateways[0], "us"), Endpoint(doomed, "eu"), transport="rest")

        async def kill() -> None:
            await doomed_stack.aclose()

        events, expected, last = await run_with_a_kill(sdk_mesh, config, kill, minute=20)
    assert_no_gap_no_duplicate(events, expected, last)
    assert events[0].endpoint == doomed
    assert any(e.endpoint == sdk_mesh.gateways[0] for e in events)
