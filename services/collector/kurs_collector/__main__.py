"""python -m kurs_collector: settings -> logging/telemetry -> serve until SIGTERM."""

from __future__ import annotations

import asyncio

from kurs_collector import server
from kurs_collector.settings import CollectorSettings
from kurs_common.grpcserver import wait_for_shutdown_signal
from kurs_common.logs import setup_logging
from kurs_common.telemetry import setup_tracing


async def main() -> None:
    settings = CollectorSettings()
    setup_logging("collector", settings.log_level)
    setup_tracing("kurs-collector", settings.otel_exporter)
    service = await server.start(settings)
    await wait_for_shutdown_signal()
    await service.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    asyncio.run(main())
