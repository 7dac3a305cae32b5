"""A channel to the shared validator fixture (which has its own SQLite file per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from kurs_validator.server import ValidatorServer


@pytest.fixture
async def validator_channel(validator_service: ValidatorServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{validator_service.port}") as channel:
        yield channel
