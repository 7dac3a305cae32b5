"""Live updates: an accepted rate reaches gRPC StreamRates subscribers and WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from conftest import Mesh, ingest_fixing, running_mesh
from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_common.series import CARRY_DAYS

pytestmark = pytest.mark.integration

NEW_DAY = "2026-11-02"


@pytest.fixture
async def mesh(recent_history_zip: Path, tmp_path: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path, recent_history_zip) as m:
        yield m


def ws_url(mesh: Mesh, query: str) -> str:
    return f"{mesh.gateway_url.replace('http://', 'ws://')}/ws/rates/stream?{query}"


async def receive(ws: ClientConnection, kind: str | None = None) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if kind is None or message["type"] == kind:
            return dict(message)


async def ingest_day(mesh: Mesh, day: str, rates: dict[str, str], *, complete: bool = True) -> int:
    return await ingest_fixing(mesh.rates.port, day, rates, complete=complete)


async def test_websocket_snapshot_then_update(mesh: Mesh) -> None:
    async with connect(ws_url(mesh, "symbols=USD,GBP&base=EUR")) as ws:
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot"
        assert set(snapshot["rates"]) == {"USD", "GBP"}
        sequence = await ingest_day(mesh, NEW_DAY, {"USD": "1.2345", "GBP": "0.8338", "JPY": "180.01"})
        update = await receive(ws, "update")
        assert update["sequence"] == sequence
        assert update["date"] == NEW_DAY
        assert update["base"] == "EUR"
        assert update["rates"]["USD"] == "1.2345"
        assert "JPY" not in update["rates"]


async def test_websocket_cross_base_update_and_heartbeat(mesh: Mesh) -> None:
    async with connect(ws_url(mesh, "symbols=GBP&base=USD")) as ws:
        await receive(ws, "snapshot")
        assert (await receive(ws))["type"] == "heartbeat"  # heartbeat_seconds=0.5 in tests
        await ingest_day(mesh, NEW_DAY, {"USD": "1.25", "GBP": "0.85"})
        update = await receive(ws, "update")
        assert update["rates"] == {"GBP": "0.68"}


async def test_websocket_resume_with_since(mesh: Mesh) -> None:
    async with connect(ws_url(mesh, "symbols=USD,JPY&base=EUR")) as ws:
        first = await receive(ws, "snapshot")
    await ingest_day(mesh, NEW_DAY, {"USD": "1.3", "JPY": "181"})
    await asyncio.sleep(0.2)
    async with connect(ws_url(mesh, f"symbols=USD,JPY&base=EUR&since={first['sequence']}")) as ws:
        resumed = await receive(ws)
    assert resumed["type"] == "update"
    assert resumed["rates"] == {"USD": "1.3", "JPY": "181"}
    async with connect(ws_url(mesh, "symbols=USD&base=EUR&since=0")) as ws:
        assert (await receive(ws))["type"] == "snapshot"


@pytest.mark.parametrize(
    ("query", "param"),
    [("symbols=XXXX", "symbols"), ("base=ZZZ", "base"), ("foo=1", "foo"), ("since=-1", "since")],
)
async def test_websocket_bad_parameters_close_clearly(mesh: Mesh, query: str, param: str) -> None:
    async with connect(ws_url(mesh, query)) as ws:
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["invalid_params"][0]["name"] == param
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008


async def test_grpc_stream_snapshot_then_update(mesh: Mesh) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel:
        stub = rates_pb2_grpc.RatesServiceStub(channel)
        call = stub.StreamRates(rates_pb2.StreamRatesRequest(base="USD", symbols=["EUR"]))
        first = await call.read()
        assert first.WhichOneof("event") == "snapshot"
        assert [r.currency for r in first.snapshot.rates] == ["EUR"]
        await ingest_day(mesh, NEW_DAY, {"USD": "1.25"})
        second = await call.read()
        assert second.WhichOneof("event") == "update"
        assert second.update.rates[0].value == "0.8"
        assert second.update.rates[0].date == NEW_DAY
        call.cancel()


async def test_grpc_bad_arguments(mesh: Mesh) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel:
        stub = rates_pb2_grpc.RatesServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetHistoricalRates(rates_pb2.GetHistoricalRatesRequest(date="2025-02-30"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (info.value.details() or "").startswith("date:")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetHistoricalRates(rates_pb2.GetHistoricalRatesRequest(date="2001-01-01"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Convert(rates_pb2.ConvertRequest(from_currency="USD", to_currency="EUR", amount="-1"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (info.value.details() or "").startswith("amount:")
        call = stub.StreamRates(rates_pb2.StreamRatesRequest(base="NOPE"))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_grpc_latest_reply_follows_every_change(mesh: Mesh) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel:
        stub = rates_pb2_grpc.RatesServiceStub(channel)
        request = rates_pb2.GetLatestRatesRequest(base="EUR", symbols=["USD"])
        first = await stub.GetLatestRates(request)
        assert first == await stub.GetLatestRates(request)  # served again from the reply cache
        sequence = await ingest_day(mesh, NEW_DAY, {"USD": "1.4242"})
        second = await stub.GetLatestRates(request)
        assert second.rates[0].value == "1.4242"
        assert second.date == NEW_DAY
        assert second.sequence == sequence > first.sequence


async def test_a_currency_missing_for_longer_than_the_carry_window_disappears_everywhere(mesh: Mesh) -> None:
    # A currency absent from the newest date is carried with its own date for CARRY_DAYS (one
    # publisher's holiday hides nothing); absent for longer, it is gone.
    later = (dt.date.fromisoformat(NEW_DAY) + dt.timedelta(days=CARRY_DAYS + 1)).isoformat()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel,
        connect(ws_url(mesh, "symbols=USD,JPY&base=EUR")) as ws,
    ):
        call = rates_pb2_grpc.RatesServiceStub(channel).StreamRates(
            rates_pb2.StreamRatesRequest(base="EUR", symbols=["USD", "JPY"])
        )
        assert {r.currency for r in (await call.read()).snapshot.rates} == {"USD", "JPY"}
        assert set((await receive(ws, "snapshot"))["rates"]) == {"USD", "JPY"}
        await ingest_day(mesh, later, {"USD": "1.2", "GBP": "0.85"}, complete=False)
        replaced = await call.read()
        assert replaced.WhichOneof("event") == "snapshot"  # an update cannot say "JPY is gone"
        assert {r.currency: r.value for r in replaced.snapshot.rates} == {"USD": "1.2"}
        assert (await receive(ws, "snapshot"))["rates"] == {"USD": "1.2"}
        call.cancel()
    async with httpx.AsyncClient(base_url=mesh.gateway_url) as client:
        latest = (await client.get("/rates/latest", params={"base": "EUR"})).json()
    assert latest["rates"] == {"USD": "1.2", "GBP": "0.85"}


async def test_heartbeats_keep_coming_while_other_currencies_churn(mesh: Mesh) -> None:
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel,
        connect(ws_url(mesh, "symbols=USD&base=EUR")) as ws,
    ):
        await receive(ws, "snapshot")
        stub = ingest_pb2_grpc.RatesIngestServiceStub(channel)
        start = dt.datetime.now(dt.UTC)
        kinds = []
        for i in range(25):  # a JPY tick every 0.1 s for 2.5 s; heartbeat_seconds is 0.5
            ts = Timestamp()
            ts.FromDatetime(start + dt.timedelta(milliseconds=100 * i))
            await stub.IngestRates(
                ingest_pb2.IngestRatesRequest(
                    rates=[
                        ingest_pb2.AcceptedRate(
                            source="replay",
                            kind=common_pb2.OBSERVATION_KIND_LIVE,
                            base="EUR",
                            currency="JPY",
                            value=f"170.{i:02d}",
                            date=start.date().isoformat(),
                            observed_at=ts,
                            replay=True,
                        )
                    ]
                )
            )
            await asyncio.sleep(0.1)
            with contextlib.suppress(TimeoutError):
                kinds.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=0.01))["type"])
        assert kinds.count("heartbeat") >= 2, kinds


async def test_binary_frames_from_the_client_are_ignored(mesh: Mesh) -> None:
    async with connect(ws_url(mesh, "symbols=USD&base=EUR")) as ws:
        await receive(ws, "snapshot")
        await ws.send(b"\x00\x01 not text")
        await ingest_day(mesh, NEW_DAY, {"USD": "1.3131"})
        assert (await receive(ws, "update"))["rates"] == {"USD": "1.3131"}


async def test_since_must_be_ascii_digits(mesh: Mesh) -> None:
    async with connect(ws_url(mesh, "since=%C2%B2")) as ws:
        error = await receive(ws)
        assert error["invalid_params"][0]["name"] == "since"
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008


async def test_websocket_with_source_streams_the_publishers_own_figures(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.gateway_url) as client:
        own = (await client.get("/rates/latest", params={"source": "ecb", "base": "EUR"})).json()
    async with connect(ws_url(mesh, "source=ecb&base=EUR&symbols=USD,GBP")) as ws:
        snapshot = await receive(ws, "snapshot")
        assert snapshot["source"] == "ecb"
        assert snapshot["rates"] == {c: own["rates"][c] for c in ("USD", "GBP")}
        assert snapshot["date"] == own["date"]
        ts = Timestamp()
        ts.FromDatetime(dt.datetime.fromisoformat(f"{NEW_DAY}T15:00:00+00:00"))

        def figure(source: str, value: str) -> ingest_pb2.AcceptedRate:
            kind = common_pb2.OBSERVATION_KIND_REFERENCE
            return ingest_pb2.AcceptedRate(
                source=source,
                kind=kind,
                base="EUR",
                currency="USD",
                value=value,
                date=NEW_DAY,
                observed_at=ts,
            )

        async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel:
            await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
                ingest_pb2.IngestRatesRequest(rates=[figure("ecb", "1.23450"), figure("blend", "1.2345")])
            )
        update = await receive(ws, "update")
        assert update["rates"] == {"USD": "1.23450"}  # the ECB's own string, not the blend's
        assert update["date"] == NEW_DAY
    async with connect(ws_url(mesh, "source=nobody")) as ws:
        error = json.loads(await ws.recv())
        assert error["type"] == "error"
        assert error["invalid_params"][0]["name"] == "source"
