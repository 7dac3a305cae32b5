"""The chaos suite's steady load: a writer with a ledger, readers, and a stream watcher.

* The writer submits a batch of live ticks to the validator (`SubmitObservations`, the way the
  collector does) every WRITE_PAUSE seconds; every batch the validator acknowledged goes into the
  ledger, which is later compared row by row with the store (`live_rates`). A refused batch (the
  validator down, its outbox full) is sent again until acknowledged, as the collector does.
* Readers GET `/rates/latest` on the gateway (answered from its in-memory snapshot) and
  `/rates/historical` of one seeded reference day (answered before the faults, so the gateway
  holds it: through a rates or database outage it answers it stale-if-error): cached reads.
* The watcher follows `WS /ws/rates/stream`, reconnecting with `since=<last sequence>`; every
  message's sequence is checked against the previous one (an update must be above it, a snapshot
  or heartbeat never below it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from dataclasses import dataclass, field

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc

SOURCE = "replay"
CURRENCIES = {"USD": "1.1", "GBP": "0.8", "JPY": "170."}  # value = prefix + a unique counter
WRITE_PAUSE = 0.1
READ_PAUSE = 0.05
LedgerKey = tuple[str, dt.datetime]  # (currency, observed_at)


@dataclass(frozen=True)
class Event:
    kind: str  # "read", "write"
    at: float
    ok: bool
    detail: str = ""


@dataclass
class Load:
    events: list[Event] = field(default_factory=list)
    # (currency, observed_at) -> (exact value, monotonic time acknowledged)
    ledger: dict[LedgerKey, tuple[str, float]] = field(default_factory=dict)
    acked_values: dict[str, float] = field(default_factory=dict)  # USD value -> time acknowledged
    held: int = 0
    sequences: list[tuple[float, str, int]] = field(default_factory=list)  # (time, type, sequence)
    sequence_faults: list[str] = field(default_factory=list)
    reconnects: int = 0
    stale_reads: int = 0  # historical answers given stale-if-error
    history_ok: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def window(self, kind: str, start: float, end: float) -> tuple[int, int, str]:
        """(requests, errors, first error) of `kind` between two monotonic times."""
        mine = [e for e in self.events if e.kind == kind and start <= e.at <= end]
        failed = [e for e in mine if not e.ok]
        return len(mine), len(failed), failed[0].detail if failed else ""


REFERENCE_DAY = dt.date.today() - dt.timedelta(days=7)
while REFERENCE_DAY.weekday() >= 5:  # a business day
    REFERENCE_DAY -= dt.timedelta(days=1)
REFERENCE = {"USD": "1.1234", "GBP": "0.8456", "JPY": "170.12"}
HISTORICAL = {"date": REFERENCE_DAY.isoformat(), "base": "EUR", "symbols": "USD,GBP,JPY"}


def reference_fixing() -> validator_pb2.SubmitObservationsRequest:
    """The ECB's fixing of REFERENCE_DAY (what /rates/historical is asked for)."""
    at = dt.datetime.combine(REFERENCE_DAY, dt.time(14, 15), dt.UTC)
    return validator_pb2.SubmitObservationsRequest(
        observations=[
            observation(c, v, at, source="ecb", kind=common_pb2.OBSERVATION_KIND_REFERENCE)
            for c, v in REFERENCE.items()
        ]
    )


def observation(
    currency: str,
    value: str,
    observed: dt.datetime,
    source: str = SOURCE,
    kind: common_pb2.ObservationKind.ValueType = common_pb2.OBSERVATION_KIND_LIVE,
) -> common_pb2.Observation:
    ts = Timestamp()
    ts.FromDatetime(observed)
    live = kind == common_pb2.OBSERVATION_KIND_LIVE
    return common_pb2.Observation(
        source=source,
        feed=SOURCE if live else "ecb-daily",
        kind=kind,
        base="EUR",
        quote=currency,
        value=value,
        date=observed.date().isoformat(),
        observed_at=ts,
        fetched_at=ts,
        replay=live,
    )


def batch(number: int, observed: dt.datetime) -> dict[str, str]:
    return {c: f"{prefix}{number:07d}" for c, prefix in CURRENCIES.items()}


async def submit(
    stub: validator_pb2_grpc.ValidatorServiceStub, values: dict[str, str], observed: dt.datetime
) -> validator_pb2.SubmitObservationsResponse:
    request = validator_pb2.SubmitObservationsRequest(
        observations=[observation(c, v, observed) for c, v in values.items()]
    )
    reply: validator_pb2.SubmitObservationsResponse = await stub.SubmitObservations(request, timeout=3.0)
    return reply


async def writer(load: Load, validator: str, start: dt.datetime, first: int = 1) -> None:
    """One batch per WRITE_PAUSE, observed one millisecond apart; each resent until acknowledged."""
    number = first
    async with grpc.aio.insecure_channel(validator) as channel:
        stub = validator_pb2_grpc.ValidatorServiceStub(channel)
        while not load.stop.is_set():
            observed = start + dt.timedelta(milliseconds=number)
            values = batch(number, observed)
            while not load.stop.is_set():
                try:
                    reply = await submit(stub, values, observed)
                except grpc.aio.AioRpcError as exc:
                    detail = f"{exc.code().name} {exc.details()}"[:160]
                    load.events.append(Event("write", time.monotonic(), False, detail))
                    await asyncio.sleep(0.2)
                    continue
                now = time.monotonic()
                load.events.append(Event("write", now, True))
                if reply.rejections:
                    raise AssertionError(f"the validator rejected a chaos batch: {reply.rejections}")
                load.held += reply.held
                for currency, value in values.items():
                    load.ledger[(currency, observed)] = (value, now)
                load.acked_values[values["USD"]] = now
                break
            number += 1
            await asyncio.sleep(WRITE_PAUSE)


async def reader(load: Load, base_url: str) -> None:
    """Alternately the latest rates and the seeded day; a historical answer must be that day's."""
    asks = [
        ("/rates/latest", {"base": "EUR", "symbols": "USD"}),
        ("/rates/historical", HISTORICAL),
    ]
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0, trust_env=False) as client:
        n = 0
        while not load.stop.is_set():
            path, params = asks[n % len(asks)]
            n += 1
            try:
                reply = await client.get(path, params=params)
                ok = reply.status_code == 200
                if ok and path == "/rates/historical":
                    ok = reply.json()["rates"] == REFERENCE
                    load.stale_reads += "x-kurs-stale" in reply.headers
                    load.history_ok += ok
                detail = "" if ok else f"{path} {reply.status_code} {reply.text[:120]}"
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                ok, detail = False, f"{path} {exc!r}"[:160]
            load.events.append(Event("read", time.monotonic(), ok, detail))
            await asyncio.sleep(READ_PAUSE)


async def watcher(load: Load, ws_url: str) -> None:
    """Follow the stream forever, resuming with since=<last sequence> after every disconnect."""
    last: int | None = None
    while not load.stop.is_set():
        url = ws_url + ("" if last is None else f"&since={last}")
        try:
            async with connect(url, open_timeout=2, close_timeout=1) as ws:
                async for text in ws:
                    message = json.loads(text)
                    kind, sequence = message["type"], int(message.get("sequence", -1))
                    if kind == "error":
                        load.sequence_faults.append(f"error message {message}")
                        continue
                    if last is not None and (sequence < last or (kind == "update" and sequence == last)):
                        load.sequence_faults.append(f"{kind} {sequence} after {last}")
                    last = max(sequence, last or 0)
                    load.sequences.append((time.monotonic(), kind, sequence))
                    if load.stop.is_set():
                        break
        except (OSError, WebSocketException, TimeoutError):
            pass
        load.reconnects += 1
        await asyncio.sleep(0.2)


async def visible_after(load: Load, base_url: str, after: float, limit: float) -> float:
    """Seconds from `after` until /rates/latest shows a batch acknowledged at or after it."""
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(base_url=base_url, timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                reply = await client.get("/rates/latest", params={"base": "EUR", "symbols": "USD"})
                acked = load.acked_values.get(reply.json()["rates"]["USD"])
                if acked is not None and acked >= after:
                    return time.monotonic() - after
            await asyncio.sleep(0.05)
    raise TimeoutError(f"no batch acknowledged after the restart reached /rates/latest in {limit}s")
