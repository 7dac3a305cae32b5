"""The SDK against the real mesh over gRPC and REST: typed, digit-exact results with provenance,
health-checked failover between endpoints and regions, and the blocking client."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from grpc_health.v1 import health_pb2

from kurs_client import (
    AsyncKursClient,
    ClientConfig,
    Conversion,
    Currency,
    Endpoint,
    InvalidArgumentError,
    KursClient,
    NotFoundError,
    NotSupportedError,
    Origin,
    Publisher,
    Rates,
    TimeSeries,
    UnavailableError,
)

from .conftest import DAY1, DAY2, FIXING1, FIXING2, SdkMesh, dead_port

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FAST = {"timeout": 3.0, "attempt_timeout": 1.0, "health_timeout": 0.5}


def grpc_config(mesh: SdkMesh, *extra: Endpoint, **options: object) -> ClientConfig:
    endpoints = (*extra, *(Endpoint(f"127.0.0.1:{r.port}", "eu") for r in mesh.replicas))
    return ClientConfig(endpoints, region="eu", **{**FAST, **options})  # type: ignore[arg-type]


def rest_config(mesh: SdkMesh, *extra: Endpoint, **options: object) -> ClientConfig:
    endpoints = (*extra, *(Endpoint(url, "eu") for url in mesh.gateways))
    return ClientConfig(endpoints, region="eu", transport="rest", **{**FAST, **options})  # type: ignore[arg-type]


async def test_grpc_results_are_typed_exact_and_carry_provenance(sdk_mesh: SdkMesh) -> None:
    async with AsyncKursClient(grpc_config(sdk_mesh)) as client:
        latest = await client.latest("EUR", ["USD", "GBP"])
        assert latest.values == {"USD": Decimal("1.1672"), "GBP": Decimal("0.8838")}
        assert str(latest["USD"]) == FIXING2["USD"]  # digit for digit
        assert (latest.base, latest.date, latest.origin, latest.stale) == (
            "EUR",
            dt.date(2026, 10, 30),
            Origin.KURS,
            False,
        )
        assert latest.rates["USD"].sources == ("ecb",)
        assert latest.rates["USD"].date == dt.date(2026, 10, 30)
        assert latest.rates["USD"].observed_at == dt.datetime(2026, 10, 30, 15, tzinfo=dt.UTC)
        assert (latest.sequence or 0) > 0

        day = await client.historical(dt.date(2026, 10, 29), "EUR", "USD,JPY")
        assert day.values == {"USD": Decimal(FIXING1["USD"]), "JPY": Decimal(FIXING1["JPY"])}
        assert (day.date, day.requested_date) == (dt.date(2026, 10, 29), dt.date(2026, 10, 29))
        series = await client.timeseries(DAY1, DAY2, "EUR", "GBP")
        assert series.days == {
            dt.date(2026, 10, 29): {"GBP": Decimal("0.8830")},
            dt.date(2026, 10, 30): {"GBP": Decimal("0.8838")},
        }
        conversion = await client.convert("USD", "GBP", "100")
        assert conversion.rate == Decimal("0.7571967101")  # 0.8838 / 1.1672, 10 significant digits
        assert conversion.result == Decimal("75.719671")
        codes = {c.code: c for c in await client.currencies()}
        assert codes["USD"].first_date == dt.date(2026, 10, 29)
        boe = {p.source: p for p in await client.publishers()}["boe"]
        assert {c.code for c in boe.currencies} >= {"EUR", "USD"}
        assert boe.last_date == dt.date(2026, 10, 30)
        published = await client.latest("GBP", "USD,EUR", source="BoE")
        assert published.values == {"USD": Decimal("1.3210"), "EUR": Decimal("1.1314")}
        assert published.rates["USD"].sources == ("boe",)

        with pytest.raises(InvalidArgumentError) as bad:
            await client.latest("EUR", "XXX")
        assert bad.value.field == "symbols"
        with pytest.raises(NotFoundError):
            await client.historical("2001-01-02", "EUR")


async def test_rest_answers_the_same_digits_behind_the_same_interface(sdk_mesh: SdkMesh) -> None:
    async with (
        AsyncKursClient(grpc_config(sdk_mesh)) as over_grpc,
        AsyncKursClient(rest_config(sdk_mesh)) as over_rest,
    ):
        for base, symbols in (("EUR", "USD,GBP,JPY"), ("USD", "EUR,CHF,KRW")):
            a, b = await over_grpc.latest(base, symbols), await over_rest.latest(base, symbols)
            assert a.values == b.values
            assert [(r.date, r.sources) for r in a.rates.values()] == [
                (r.date, r.sources) for r in b.rates.values()
            ]
        a2, b2 = (
            await over_grpc.historical(DAY1, "USD", "GBP"),
            await over_rest.historical(DAY1, "USD", "GBP"),
        )
        assert a2.values == b2.values
        assert (await over_grpc.timeseries(DAY1, DAY2, "GBP")).days == (
            await over_rest.timeseries(DAY1, DAY2, "GBP")
        ).days
        c1 = await over_grpc.convert("GBP", "JPY", "12.5", date=DAY1)
        c2 = await over_rest.convert("GBP", "JPY", "12.5", date=DAY1)
        assert (c1.rate, c1.result, c1.date) == (c2.rate, c2.result, c2.date)
        assert {c.code for c in await over_grpc.currencies()} == {
            c.code for c in await over_rest.currencies()
        }
        with pytest.raises(InvalidArgumentError) as bad:
            await over_rest.latest("EUR", "XXX")
        assert bad.value.field == "symbols"
        with pytest.raises(NotSupportedError):
            await over_rest.publishers()


async def test_grpc_failover_skips_dead_and_not_serving_endpoints(sdk_mesh: SdkMesh) -> None:
    a, b = sdk_mesh.replicas
    dead = Endpoint(f"127.0.0.1:{dead_port()}", "eu")
    far = Endpoint(f"127.0.0.1:{b.port}", "us")
    config = ClientConfig((far, dead, Endpoint(f"127.0.0.1:{a.port}", "eu")), region="eu", **FAST)  # type: ignore[arg-type]
    async with AsyncKursClient(config) as client:
        client.cache.ttl = 0
        assert (await client.latest("EUR", "USD"))["USD"] == Decimal("1.1672")
        pool = client.transport.pool
        assert pool.is_down(dead)  # probed, refused, skipped: the region's healthy replica answered

        # The region's replica reports NOT_SERVING: the call goes to the other region.
        await a.grpc.health.set("kurs.rates.v1.RatesService", health_pb2.HealthCheckResponse.NOT_SERVING)
        try:
            pool.mark_down(Endpoint(f"127.0.0.1:{a.port}", "eu"))  # expire its cached verdict
            assert (await client.latest("EUR", "GBP"))["GBP"] == Decimal("0.8838")
            assert not pool.is_down(far)
        finally:
            await a.grpc.health.set("kurs.rates.v1.RatesService", health_pb2.HealthCheckResponse.SERVING)

    nowhere = ClientConfig((dead,), timeout=1.0, attempt_timeout=0.5, health_timeout=0.2)
    async with AsyncKursClient(nowhere) as client:
        with pytest.raises(UnavailableError):
            await client.latest("EUR", "USD")


async def test_rest_failover_to_the_next_gateway(sdk_mesh: SdkMesh) -> None:
    dead = Endpoint(f"http://127.0.0.1:{dead_port()}", "eu")
    async with AsyncKursClient(rest_config(sdk_mesh, dead)) as client:
        assert (await client.latest("EUR", "CHF"))["CHF"] == Decimal("0.9302")
        assert client.transport.pool.is_down(dead)


async def test_the_blocking_client_and_its_cache(sdk_mesh: SdkMesh) -> None:
    def use() -> tuple[Decimal, Origin, Origin, str]:
        with KursClient(grpc_config(sdk_mesh)) as client:
            first = client.latest("EUR", "USD")
            second = client.latest("EUR", "USD")
            events = client.stream_rates("EUR", "USD")
            snapshot = next(events)
            events.close()
            return first["USD"], first.origin, second.origin, snapshot.kind

    # The servers run on this event loop: the blocking client must run in another thread.
    assert await asyncio.to_thread(use) == (Decimal("1.1672"), Origin.KURS, Origin.CACHE, "snapshot")


async def test_the_blocking_client_answers_as_the_async_one(sdk_mesh: SdkMesh) -> None:
    Answers = tuple[Rates, TimeSeries, Conversion, tuple[Currency, ...], tuple[Publisher, ...]]
    async with AsyncKursClient(grpc_config(sdk_mesh)) as aio:
        expected: Answers = (
            await aio.historical(DAY1, "USD", "GBP"),
            await aio.timeseries(DAY1, DAY2, "EUR", "GBP"),
            await aio.convert("USD", "GBP", "100", date=DAY2, timeout=5),
            await aio.currencies(),
            await aio.publishers(),
        )

    def use() -> Answers:
        with KursClient(grpc_config(sdk_mesh)) as client:
            return (
                client.historical(DAY1, "USD", "GBP"),
                client.timeseries(DAY1, DAY2, "EUR", "GBP"),
                client.convert("USD", "GBP", "100", date=DAY2, timeout=5),
                client.currencies(),
                client.publishers(),
            )

    answered = await asyncio.to_thread(use)
    # the same answers (a Rates says when it was fetched: that alone differs)
    assert dataclasses.replace(answered[0], fetched_at=expected[0].fetched_at) == expected[0]
    assert answered[1:] == expected[1:]
    assert answered[2].result == expected[2].result > 0
