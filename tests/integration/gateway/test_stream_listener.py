"""The native stream port beside the ASGI route, in the real gateway app over a real mesh.

The same queries go to `ws://…:<port>/ws/rates/stream` (ASGI, main port) and to the native
listener's port; every message and close must be the same, for the blended series and for a
publisher's own figures (`source=`, read from the rates service).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import Mesh, ingest_fixing, running_mesh, serve_gateway
from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc

pytestmark = pytest.mark.integration

NEW_DAY = "2026-11-02"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def two_doors(mesh: Mesh, **overrides: Any) -> AsyncIterator[tuple[str, str]]:
    """A second gateway on the mesh with its native stream port; yields both stream URLs."""
    port = free_port()
    async with serve_gateway(
        mesh.rates.port,
        mesh.collector.port,
        mesh.validator.port,
        heartbeat_seconds=60,
        stream_port=port,
        **overrides,
    ) as url:
        yield url.replace("http://", "ws://"), f"ws://127.0.0.1:{port}"


@pytest.fixture
async def mesh(recent_history_zip: Path, tmp_path: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path, recent_history_zip) as m:
        yield m


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))


async def closed(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), timeout=10)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_both_doors_stream_the_same_messages(mesh: Mesh) -> None:
    path = "/ws/rates/stream?symbols=USD,GBP&base=EUR"
    publisher = "/ws/rates/stream?source=ecb&base=EUR&symbols=USD"
    async with (
        two_doors(mesh) as (asgi, native),
        connect(asgi + path) as a,
        connect(native + path) as n,
        connect(asgi + publisher) as pa,
        connect(native + publisher) as pn,
    ):
        first = await receive(a)
        assert first["type"] == "snapshot"
        assert await receive(n) == first
        own = await receive(pa)
        assert own["source"] == "ecb"
        assert await receive(pn) == own
        sequence = await ingest_fixing(
            mesh.rates.port, NEW_DAY, {"USD": "1.2345", "GBP": "0.8338"}, complete=True
        )
        update = await receive(a)
        assert (update["type"], update["sequence"], update["rates"]["USD"]) == ("update", sequence, "1.2345")
        assert await receive(n) == update
        ts = Timestamp()
        ts.FromDatetime(dt.datetime.fromisoformat(f"{NEW_DAY}T15:00:00+00:00"))
        figures = [
            ingest_pb2.AcceptedRate(
                source=source,
                kind=common_pb2.OBSERVATION_KIND_REFERENCE,
                base="EUR",
                currency="USD",
                value=value,
                date=NEW_DAY,
                observed_at=ts,
            )
            for source, value in (("ecb", "1.23460"), ("blend", "1.2346"))
        ]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.rates.port}") as channel:
            await ingest_pb2_grpc.RatesIngestServiceStub(channel).IngestRates(
                ingest_pb2.IngestRatesRequest(rates=figures)
            )
        publications = [await receive(pa)]  # (the fixing above may have moved the ECB's view too)
        while publications[-1]["rates"] != {"USD": "1.23460"}:  # the ECB's own string
            publications.append(await receive(pa))
        assert [await receive(pn) for _ in publications] == publications
        async with connect(asgi + path + f"&since={first['sequence']}") as ra:
            resumed = await receive(ra)
        async with connect(native + path + f"&since={first['sequence']}") as rn:
            assert await receive(rn) == resumed
        assert resumed["type"] == "update"


@pytest.mark.parametrize("query", ["source=nobody", "symbols=XXXX", "base=EUR&symbols=USD&since=x"])
async def test_both_doors_refuse_bad_parameters_alike(mesh: Mesh, query: str) -> None:
    async with two_doors(mesh) as (asgi, native):
        answers = []
        for door in (asgi, native):
            async with connect(f"{door}/ws/rates/stream?{query}") as ws:
                answers.append((await receive(ws), await closed(ws)))
    assert answers[0] == answers[1]
    assert answers[0][0]["type"] == "error"
    assert answers[0][1][0] == 1008


async def test_both_doors_ask_for_the_same_key(mesh: Mesh) -> None:
    async with two_doors(mesh, api_keys=["k-both"]) as (asgi, native):
        for door in (asgi, native):
            with pytest.raises(InvalidStatus) as info:
                await connect(f"{door}/ws/rates/stream?symbols=USD")
            assert info.value.response.status_code == 401
            async with connect(f"{door}/ws/rates/stream?symbols=USD&api_key=k-both") as ws:
                assert (await receive(ws))["type"] == "snapshot"
