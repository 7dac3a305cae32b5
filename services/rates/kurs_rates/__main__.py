"""python -m kurs_rates: settings -> logging/telemetry -> serve until SIGTERM."""

from __future__ import annotations

import asyncio

from kurs_common.grpcserver import wait_for_shutdown_signal
from kurs_common.logs import setup_logging
from kurs_common.telemetry import setup_tracing
from kurs_rates import server
from kurs_rates.settings import RatesSettings


async def main() -> None:
    settings = RatesSettings()
    setup_logging("rates", settings.log_level)
    setup_tracing("kurs-rates", settings.otel_exporter)
    service = await server.start(settings)
    await wait_for_shutdown_signal()
    await service.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    asyncio.run(main())
