"""EndpointPool: the caller's region first, health-checked, failover within one deadline."""

from __future__ import annotations

import pytest

from kurs_client import ClientConfig, Endpoint, UnavailableError
from kurs_client.pool import EndpointPool, TransientError

EU1, EU2, US1 = Endpoint("eu1:1", "eu"), Endpoint("eu2:1", "eu"), Endpoint("us1:1", "us")


class Probe:
    def __init__(self, healthy: set[str]) -> None:
        self.healthy = healthy
        self.probed: list[str] = []

    async def __call__(self, endpoint: Endpoint, deadline: float) -> bool:
        self.probed.append(endpoint.address)
        return endpoint.address in self.healthy


def pool(probe: Probe, **options: float) -> EndpointPool:
    return EndpointPool(ClientConfig((US1, EU1, EU2), region="eu", **options), probe)  # type: ignore[arg-type]


async def test_the_callers_region_first_and_unhealthy_endpoints_skipped() -> None:
    probe = Probe({"eu2:1", "us1:1"})
    p = pool(probe)

    async def where(endpoint: Endpoint, deadline: float) -> str:
        return endpoint.address

    assert await p.call(where) == "eu2:1"
    assert probe.probed == ["eu1:1", "eu2:1"]
    assert await p.call(where) == "eu2:1"  # healthy within health_interval: no new probe
    assert probe.probed == ["eu1:1", "eu2:1"]


async def test_a_failing_call_moves_to_the_next_endpoint() -> None:
    probe = Probe({"eu1:1", "eu2:1", "us1:1"})
    p = pool(probe)
    tried: list[str] = []

    async def flaky(endpoint: Endpoint, deadline: float) -> str:
        tried.append(endpoint.address)
        if endpoint.address.startswith("eu"):
            raise TransientError("UNAVAILABLE")
        return endpoint.address

    assert await p.call(flaky) == "us1:1"
    assert tried == ["eu1:1", "eu2:1", "us1:1"]
    assert [p.is_down(e) for e in (EU1, EU2, US1)] == [True, True, False]


async def test_nothing_usable_is_a_typed_error_listing_the_attempts() -> None:
    p = pool(Probe({"eu1:1"}))

    async def broken(endpoint: Endpoint, deadline: float) -> str:
        raise TransientError("DEADLINE_EXCEEDED")

    with pytest.raises(UnavailableError) as failure:
        await p.call(broken)
    assert failure.value.attempts == ("eu1:1: DEADLINE_EXCEEDED",)


async def test_endpoints_marked_down_are_tried_last_not_never() -> None:
    probe = Probe({"eu1:1"})
    p = pool(probe, down_seconds=60)
    p.mark_down(EU1)

    async def where(endpoint: Endpoint, deadline: float) -> str:
        return endpoint.address

    assert await p.call(where) == "eu1:1"  # eu2 and us1 fail their probes; eu1 is re-probed last
    assert probe.probed == ["eu2:1", "us1:1", "eu1:1"]
