"""python -m kurs_validator: settings -> logging/telemetry -> serve until SIGTERM."""

from __future__ import annotations

import asyncio

from kurs_common.grpcserver import wait_for_shutdown_signal
from kurs_common.logs import setup_logging
from kurs_common.telemetry import setup_tracing
from kurs_validator import server
from kurs_validator.settings import ValidatorSettings


async def main() -> None:
    settings = ValidatorSettings()
    setup_logging("validator", settings.log_level)
    setup_tracing("kurs-validator", settings.otel_exporter)
    server.tune_gc()
    service = await server.start(settings)
    await wait_for_shutdown_signal()
    await service.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    asyncio.run(main())
