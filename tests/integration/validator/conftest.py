"""A validator with its own SQLite file, in front of the shared rates service fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kurs_rates.server import RatesService
from kurs_validator import server as validator_server
from kurs_validator.server import ValidatorService
from kurs_validator.settings import ValidatorSettings


@pytest.fixture
async def own_validator(rates_service: RatesService, tmp_path: Path) -> AsyncIterator[ValidatorService]:
    settings = ValidatorSettings(
        address="127.0.0.1:0",
        rates_address=f"127.0.0.1:{rates_service.port}",
        database_url=f"sqlite:///{tmp_path / 'validator.sqlite3'}",
    )
    service = await validator_server.start(settings)
    yield service
    await service.stop(0)


@pytest.fixture
async def validator_channel(own_validator: ValidatorService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{own_validator.port}") as channel:
        yield channel
