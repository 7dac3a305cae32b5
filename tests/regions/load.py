"""Client load of the failover drill: readers through the balancer, a writer with a ledger.

Readers GET latest and historical rates through HAProxy and record every answer. The writer
sends IngestRates batches of live ticks to the rates service of the first region in its list
(the public gRPC API), moving to the next region on any error and retrying the same batch there
(what the validator does: at-least-once delivery; a retried batch is idempotent in the store).
Every batch the rates service acknowledged goes into the ledger: the RPO is the ledger's rows
missing from the database after the failover.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc
from support.rates_replicas import accepted_rate

CURRENCIES = ("USD", "GBP", "JPY", "CHF", "SEK")
TICK_SOURCE = "replay"
LedgerKey = tuple[str, dt.datetime]  # (currency, observed_at)


@dataclass(frozen=True)
class Event:
    kind: str  # "latest", "historical", "write"
    started: float
    ended: float
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class StreamMessage:
    at: float
    connection: int  # 0 for the first WebSocket connection, 1 for the next, ...
    kind: str  # snapshot, update, heartbeat
    sequence: int


@dataclass
class Load:
    events: list[Event] = field(default_factory=list)
    stream: list[StreamMessage] = field(default_factory=list)
    ledger: list[LedgerKey] = field(default_factory=list)
    acked_batches: int = 0
    endpoint_switches: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def rate(currency: str, value: str, observed: dt.datetime, kind: str = "live") -> ingest_pb2.AcceptedRate:
    return accepted_rate(currency, value, observed, kind, TICK_SOURCE)


def fixings(days: Sequence[dt.date]) -> list[ingest_pb2.AcceptedRate]:
    """Reference figures for `days` (the data the readers ask for)."""
    out = []
    for n, day in enumerate(days):
        at = dt.datetime.combine(day, dt.time(14, 15), dt.UTC)
        for i, currency in enumerate(CURRENCIES):
            out.append(rate(currency, f"{1 + i}.{1000 + n:04d}", at, kind="reference"))
    return out


async def ingest_once(target: str, rates: Sequence[ingest_pb2.AcceptedRate], deadline: float = 10.0) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = ingest_pb2_grpc.RatesIngestServiceStub(channel)
        await stub.IngestRates(ingest_pb2.IngestRatesRequest(rates=rates), timeout=deadline)


async def reader(load: Load, base_url: str, paths: Sequence[tuple[str, str]], pause: float = 0.05) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0, trust_env=False) as client:
        n = 0
        while not load.stop.is_set():
            kind, path = paths[n % len(paths)]
            n += 1
            started = time.monotonic()
            try:
                reply = await client.get(path)
                ok = reply.status_code == 200 and '"rates"' in reply.text
                detail = "" if ok else f"{reply.status_code} {reply.text[:120]}"
            except httpx.HTTPError as exc:
                ok, detail = False, repr(exc)[:160]
            load.events.append(Event(kind, started, time.monotonic(), ok, detail))
            await asyncio.sleep(pause)


async def writer(load: Load, targets: Sequence[str], start: dt.datetime, pause: float = 0.1) -> None:
    """Batches of 5 live ticks, one second of observed_at apart; each retried until acknowledged."""
    channels = [grpc.aio.insecure_channel(t) for t in targets]
    stubs = [ingest_pb2_grpc.RatesIngestServiceStub(c) for c in channels]
    current = 0
    try:
        batch_no = 0
        while not load.stop.is_set():
            observed = start + dt.timedelta(seconds=batch_no)
            batch = [rate(c, f"1.{batch_no:06d}{i}", observed) for i, c in enumerate(CURRENCIES)]
            while not load.stop.is_set():
                started = time.monotonic()
                try:
                    await stubs[current].IngestRates(ingest_pb2.IngestRatesRequest(rates=batch), timeout=2.0)
                except grpc.aio.AioRpcError as exc:
                    detail = f"{targets[current]} {exc.code().name} {exc.details()}"[:160]
                    load.events.append(Event("write", started, time.monotonic(), False, detail))
                    current = (current + 1) % len(stubs)
                    load.endpoint_switches += 1
                    await asyncio.sleep(0.2)
                    continue
                load.events.append(Event("write", started, time.monotonic(), True, targets[current]))
                load.ledger.extend((c, observed) for c in CURRENCIES)
                load.acked_batches += 1
                break
            batch_no += 1
            await asyncio.sleep(pause)
    finally:
        for channel in channels:
            await channel.close()


async def stream_client(load: Load, first_url: str, then_url: str, idle: float = 3.0) -> None:
    """A WebSocket client: first on `first_url`; when the connection fails or stays silent for
    `idle` seconds (heartbeats come every second), it reconnects on `then_url` with since=."""
    url, connection, since = first_url, 0, -1
    while not load.stop.is_set():
        target = url if since < 0 else f"{url}&since={since}"
        try:
            async with connect(target, open_timeout=2.0, close_timeout=0.5) as ws:
                while not load.stop.is_set():
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=idle))
                    since = int(message.get("sequence", since))
                    load.stream.append(StreamMessage(time.monotonic(), connection, message["type"], since))
        except (TimeoutError, OSError, InvalidHandshake, WebSocketException) as exc:
            load.events.append(Event("stream", time.monotonic(), time.monotonic(), False, repr(exc)[:160]))
            url, connection = then_url, connection + 1
            await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Outage:
    """What one kind of client saw after the cut at `cut` (monotonic seconds)."""

    kind: str
    requests: int
    errors: int
    rto: float  # seconds from the cut until the first success after the last failure (0: none)
    first_error: str


def outage(events: Sequence[Event], kind: str, cut: float) -> Outage:
    mine = [e for e in events if e.kind == kind and e.ended >= cut]
    failures = [e for e in mine if not e.ok]
    if not failures:
        return Outage(kind, len(mine), 0, 0.0, "")
    last_failure = max(e.ended for e in failures)
    recovered = [e.ended for e in mine if e.ok and e.ended >= last_failure]
    rto = (min(recovered) - cut) if recovered else float("inf")
    return Outage(kind, len(mine), len(failures), rto, failures[0].detail)
