"""The fallback chain against real servers: Kurs down -> a fake ExchangeRate-API v6 on loopback
(its real response format, the key from configuration, USD triangulation for a base it refuses)
-> the last good value marked stale -> a typed error."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from integration.rates.conftest import TcpProxy

from kurs_client import AsyncKursClient, ClientConfig, Endpoint, Origin, UnavailableError
from kurs_client.models import cross

from .conftest import V6_KEY, V6_USD, FakeV6, SdkMesh, dead_port

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def config(endpoint: str, v6_url: str, key: str = V6_KEY, **options: float) -> ClientConfig:
    return ClientConfig(
        (Endpoint(endpoint),),
        timeout=1.5,
        attempt_timeout=0.5,
        health_timeout=0.3,
        down_seconds=0.1,
        exchangerate_api_url=v6_url,
        exchangerate_api_key=key,
        **options,  # type: ignore[arg-type]
    )


async def test_kurs_down_is_answered_by_exchangerate_api(fake_v6: FakeV6) -> None:
    async with AsyncKursClient(config(f"127.0.0.1:{dead_port()}", fake_v6.url)) as client:
        direct = await client.latest("USD", "EUR,GBP")
        assert direct.values == {"EUR": Decimal(V6_USD["EUR"]), "GBP": Decimal(V6_USD["GBP"])}  # every digit
        assert (direct.origin, direct.stale, direct.date) == (
            Origin.EXCHANGERATE_API,
            False,
            dt.date(2025, 10, 30),
        )
        assert direct.rates["EUR"].sources == ("exchangerate-api",)

        # The fake serves a USD table only: EUR-based rates are triangulated through USD.
        crossed = await client.latest("EUR", "GBP,USD")
        eur, gbp = Decimal(V6_USD["EUR"]), Decimal(V6_USD["GBP"])
        assert crossed.values == {"GBP": cross(gbp, eur), "USD": cross(Decimal(1), eur)}
        assert crossed["GBP"] == Decimal("0.8838000000")
        assert {r.via for r in crossed.rates.values()} == {"USD"}

        pair = await client.convert("USD", "JPY", "10")
        assert (pair.rate, pair.result, pair.origin) == (
            Decimal("152.9815"),
            Decimal("1529.815000"),
            Origin.EXCHANGERATE_API,
        )
        via = await client.convert("EUR", "GBP", "10")
        assert (via.rate, via.result, via.via) == (Decimal("0.8838000000"), Decimal("8.838000"), "USD")
    assert f"/v6/{V6_KEY}/latest/USD" in fake_v6.requests
    assert f"/v6/{V6_KEY}/pair/USD/JPY" in fake_v6.requests

    async with AsyncKursClient(config(f"127.0.0.1:{dead_port()}", fake_v6.url, key="wrong")) as client:
        with pytest.raises(UnavailableError) as failure:
            await client.latest("USD", "EUR")
        assert "invalid-key" in str(failure.value)


async def test_every_live_source_down_serves_the_last_good_value_marked_stale(sdk_mesh: SdkMesh) -> None:
    proxy = TcpProxy("127.0.0.1", sdk_mesh.replicas[0].port)
    await proxy.start()
    dead_v6 = f"http://127.0.0.1:{dead_port()}"
    try:
        async with AsyncKursClient(config(f"127.0.0.1:{proxy.port}", dead_v6, cache_seconds=0)) as client:
            good = await client.latest("EUR", "USD,GBP")
            assert (good.origin, good.stale) == (Origin.KURS, False)

            await proxy.cut()
            stale = await client.latest("EUR", "USD,GBP")
            assert (stale.origin, stale.stale) == (Origin.CACHE, True)
            assert stale.values == good.values == {"USD": Decimal("1.1672"), "GBP": Decimal("0.8838")}
            assert stale.rates["USD"].sources == ("ecb",)  # provenance kept
            with pytest.raises(UnavailableError) as failure:
                await client.latest("EUR", "JPY")  # never answered: nothing to fall back on
            assert [a.split(":")[0] for a in failure.value.attempts] == ["kurs", "exchangerate-api"]

            await proxy.restore()
            for _ in range(50):  # the channel reconnects within its (short) reconnect backoff
                again = await client.latest("EUR", "USD,GBP")
                if not again.stale:
                    break
                await asyncio.sleep(0.1)
            assert (again.origin, again.stale) == (Origin.KURS, False)
    finally:
        await proxy.close()
