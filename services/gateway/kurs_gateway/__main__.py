"""python -m kurs_gateway: settings -> logging/telemetry -> serve (uvicorn) until SIGTERM."""

from __future__ import annotations

import uvicorn

from kurs_common.logs import setup_logging
from kurs_common.telemetry import setup_tracing
from kurs_gateway.app import create_app
from kurs_gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    setup_logging("gateway", settings.log_level)
    setup_tracing("kurs-gateway", settings.otel_exporter)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
