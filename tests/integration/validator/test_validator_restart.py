"""A held figure survives a validator restart (persisted in its SQLite store, restored at start)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common import money
from kurs_common.observation import REFERENCE, Observation
from kurs_rates.server import RatesServer
from kurs_validator import server as validator_server
from kurs_validator.settings import ValidatorSettings

pytestmark = pytest.mark.integration

LEVELS = {"USD": "1.1172", "JPY": "175.68", "GBP": "0.8338", "SAR": "4.19", "CHF": "0.9194"}


def business_days(count: int, start: dt.date) -> list[dt.date]:
    days = [start + dt.timedelta(days=i) for i in range(count * 2)]
    return [d for d in days if d.weekday() < 5][:count]


DAYS = business_days(27, dt.date(2026, 9, 1))


def day_of(i: int, chf_factor: str = "1") -> list[Observation]:
    at = dt.datetime.combine(DAYS[i], dt.time(14), tzinfo=dt.UTC)
    out = []
    for k, (code, level) in enumerate(LEVELS.items()):
        value = f"{level}{(i * 3 + k) % 7}"
        if code == "CHF":
            value = money.format_decimal(Decimal(value) * Decimal(chf_factor))
        out.append(Observation("ecb", "ecb-daily", REFERENCE, "EUR", code, value, DAYS[i].isoformat(), at))
    return out


async def submit(port: int, observations: list[Observation]) -> validator_pb2.SubmitObservationsResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply: validator_pb2.SubmitObservationsResponse = await validator_pb2_grpc.ValidatorServiceStub(
            channel
        ).SubmitObservations(
            validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in observations]),
            timeout=30,
        )
        return reply


async def chf_published(rates: RatesServer, day: dt.date) -> str | None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rates.port}") as channel:
        reply = await rates_pb2_grpc.RatesServiceStub(channel).GetHistoricalRates(
            rates_pb2.GetHistoricalRatesRequest(date=day.isoformat(), base="EUR", symbols=["CHF"]), timeout=30
        )
    return next((r.value for r in reply.rates if r.date == day.isoformat()), None)


async def test_a_held_jump_is_published_after_a_restart(rates_service: RatesServer, tmp_path: Path) -> None:
    settings = ValidatorSettings(
        address="127.0.0.1:0",
        rates_address=f"127.0.0.1:{rates_service.port}",
        database_url=f"sqlite:///{tmp_path / 'validator.sqlite3'}",
    )
    first = await validator_server.start(settings)
    try:
        history = [o for i in range(25) for o in day_of(i)]
        assert (await submit(first.port, history)).accepted == len(history)
        jump = day_of(25, chf_factor="0.85")  # CHF moves 15 % down ...
        reply = await submit(first.port, jump)
        assert (reply.accepted, reply.held) == (5, 1)
    finally:
        await first.stop(0)  # the held figure was acknowledged: it must outlive this process
    assert await chf_published(rates_service, DAYS[25]) is None

    second = await validator_server.start(settings)
    try:
        # ... and stays: the held figure is published late, as it was judged before the restart.
        reply = await submit(second.port, day_of(26, chf_factor="0.85"))
        assert (reply.accepted, reply.held, list(reply.rejections)) == (5, 0, [])
        assert reply.published == 6  # the 5 figures of day 26 and the held one of day 25
        assert await chf_published(rates_service, DAYS[25]) == jump[-1].value
        assert second.store.load_held() == []
    finally:
        await second.stop(0)
