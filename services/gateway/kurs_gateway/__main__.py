"""python -m kurs_gateway: settings -> logging/telemetry -> serve (uvicorn) until SIGTERM.

`python -m kurs_gateway keys ...` manages API keys instead (keys/cli.py).
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["keys"]:
        from kurs_gateway.keys import cli  # without the server's imports: a quick start

        sys.exit(cli.main(sys.argv[2:]))
    serve()


def serve() -> None:
    import uvicorn

    from kurs_common.logs import setup_logging
    from kurs_common.telemetry import setup_tracing
    from kurs_gateway.app import create_app
    from kurs_gateway.settings import GatewaySettings

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
