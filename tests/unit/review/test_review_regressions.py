"""Regression tests for problems found in review of the collector, validator and money code."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from kurs.rates.v1 import ingest_pb2
from kurs.validator.v1 import validator_pb2
from kurs_collector.breaker import CircuitBreaker
from kurs_collector.errors import FeedError
from kurs_collector.http import Fetcher, Request
from kurs_collector.state import FeedState
from kurs_common import money
from kurs_common.observation import REFERENCE, Observation
from kurs_validator.engine import REJECTIONS_KEPT, ValidationEngine, _remember_rejection, _Series
from kurs_validator.hub import AnomalyHub
from kurs_validator.servicer import ValidatorServicer
from kurs_validator.store import ValidatorStore


@pytest.mark.parametrize("text", ["١.٥", "１.５", "1.5\n", "1.5 "])
def test_decimals_are_ascii_only(text: str) -> None:
    with pytest.raises(money.DecimalFormatError):
        money.parse_rate(text)


def test_corrupt_state_day_starts_fresh() -> None:
    assert FeedState.from_json({"last_day": "2025-01-5"}).last_day is None
    assert FeedState.from_json({"last_day": 7}).last_day is None
    assert FeedState.from_json({"last_day": "2025-01-05"}).last_day == "2025-01-05"


def test_rejections_kept_per_series_are_bounded() -> None:
    series = _Series()
    for t in range(REJECTIONS_KEPT + 10):
        _remember_rejection(series, t, "1", "no_pivot_cross")
    assert len(series.rejected) == REJECTIONS_KEPT
    assert min(series.rejected) == 10  # the oldest went first


class _SlowDrip:
    """An ASGI app that sends headers, then one byte every 0.2 s, forever."""

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]}
        )  # type: ignore[operator]
        while True:
            await send({"type": "http.response.body", "body": b"x", "more_body": True})  # type: ignore[operator]
            await asyncio.sleep(0.2)


@pytest.fixture
async def drip_url() -> AsyncIterator[str]:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_SlowDrip(), log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.force_exit = True
    server.should_exit = True
    await task
    sock.close()


async def test_a_dripping_provider_times_out_as_a_whole(drip_url: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        fetcher = Fetcher(
            client,
            source="drip",
            base_url=drip_url,
            breaker=CircuitBreaker(5, 60.0),
            timeout=0.5,
            retries=1,
            backoff=0.01,
            backoff_max=0.02,
            user_agent="kurs-test",
        )
        started = asyncio.get_running_loop().time()
        with pytest.raises(FeedError, match="timed out"):
            await fetcher.fetch(Request("/data.csv"))
        assert asyncio.get_running_loop().time() - started < 5


class _Rates:
    """A rates stub that refuses one named rate, like the real service does."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def IngestRates(
        self, request: ingest_pb2.IngestRatesRequest, **_: object
    ) -> ingest_pb2.IngestRatesResponse:
        for i, rate in enumerate(request.rates):
            if rate.currency == "JPY":
                raise _Refused(f"rates[{i}].value: refused")
        self.stored += [r.currency for r in request.rates]
        return ingest_pb2.IngestRatesResponse(inserted=len(request.rates))


class _Refused(grpc.aio.AioRpcError):  # type: ignore[misc]
    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class _Context:
    async def abort(self, code: object, details: str) -> None:
        raise RuntimeError(details)


async def test_one_refused_rate_does_not_drop_the_others(tmp_path: object) -> None:
    store = ValidatorStore(f"sqlite:///{tmp_path}/v.sqlite3")
    store.open()
    rates = _Rates()
    servicer = ValidatorServicer(rates, ValidationEngine(), store, AnomalyHub(), forward_batch=10, timeout=5)  # type: ignore[arg-type]
    at = dt.datetime(2025, 1, 15, 15, tzinfo=dt.UTC)
    batch = [
        Observation("ecb", "t", REFERENCE, "EUR", code, value, "2025-01-15", at)
        for code, value in (("USD", "1.0316"), ("JPY", "162.5"), ("GBP", "0.8424"))
    ]
    request = validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in batch])
    await servicer.SubmitObservations(request, _Context())
    store.close()
    # Each figure travels twice (as the ECB published it, and in the blend); both JPY refused.
    assert sorted(rates.stored) == ["GBP", "GBP", "USD", "USD"]
