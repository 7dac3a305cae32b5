"""python -m kurs_gateway: settings -> logging/telemetry -> serve until SIGTERM.

The server is granian by default (`KURS_GATEWAY_SERVER`; chosen by measurement, see
docs/benchmarks.md): it parses HTTP and frames WebSockets in Rust, enforces the header size limit
and the header read timeout itself, and runs `KURS_GATEWAY_WORKERS` processes sharing the port
(each builds its own app through `kurs_gateway.app:served_app`, with its own rates stream).
uvicorn stays available as a fallback (`KURS_GATEWAY_SERVER=uvicorn`, one process).
With `KURS_GATEWAY_GRPC_ADDRESS` set, each worker's lifespan also serves the gRPC analysis API on
that address (grpc_analysis.py; the workers share it through SO_REUSEPORT). Likewise each
worker's lifespan serves WS /ws/rates/stream on `KURS_GATEWAY_STREAM_PORT` (default 8001) with
the native stream listener (stream_listener.py), framed by the gateway itself rather than by
granian, each worker with its own broadcaster; the main port keeps the same route through ASGI.

`python -m kurs_gateway keys ...` manages API keys instead (keys/cli.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kurs_gateway.settings import GatewaySettings


def main() -> None:
    if sys.argv[1:2] == ["keys"]:
        from kurs_gateway.keys import cli  # without the server's imports: a quick start

        sys.exit(cli.main(sys.argv[2:]))
    serve()


def serve() -> None:
    from kurs_gateway.settings import GatewaySettings

    settings = GatewaySettings()
    if settings.server == "granian":
        serve_granian(settings)
    else:
        serve_uvicorn(settings)


def serve_granian(settings: GatewaySettings) -> None:
    import multiprocessing
    import os

    # granian's allocator (jemalloc) keeps freed pages unless told to purge them: without this,
    # the buffers of 10,000 WebSocket clients (about 150 kB each) stay resident after they leave
    # (1,000 clients: 242 -> 398 MB, still 388 MB after; tools/bench_ws.py). Purged 1 s after
    # they are freed, by jemalloc's background threads: those run only in a process that loaded
    # jemalloc itself, so workers are spawned, not forked (a forked child has none). Purging at
    # once instead (dirty_decay_ms:0) cost a page fault per HTTP request: 0.58x the throughput
    # of the same bare app (docs/benchmarks.md). Read when granian's extension loads.
    os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")
    multiprocessing.set_start_method("spawn", force=True)
    from granian.constants import Interfaces, Loops, RuntimeModes
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    from kurs_common.logs import setup_logging

    setup_logging("gateway", settings.log_level)
    server = Server(
        "kurs_gateway.app:served_app",
        factory=True,  # each worker builds its app (settings, logging, telemetry) on its own
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        # The single-threaded Rust runtime per worker, not granian's default for ASGI (the
        # multi-threaded one): there, a SIGTERM while WebSocket clients are connected to the main
        # port aborted the worker ("Cannot drop pointer into Python heap without the thread being
        # attached", granian issues #799 and #884) before its lifespan shutdown ran (usage not
        # flushed, streams not closed); tests/integration/gateway/test_main.py. HTTP throughput
        # is the same or better (docs/benchmarks.md (7)).
        runtime_mode=RuntimeModes.st,
        workers=settings.workers,
        loop=Loops.uvloop,
        websockets=True,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_read_timeout_seconds * 1000)),
            max_buffer_size=settings.max_header_bytes,
        ),
        log_enabled=True,
        log_level=LogLevels(_granian_level(settings.log_level)),
        log_access=False,
        workers_kill_timeout=max(1, round(settings.shutdown_grace_seconds)),
    )
    server.serve()


def _granian_level(level: str) -> str:
    name = level.strip().lower()
    return name if name in {"critical", "error", "warning", "info", "debug"} else "info"


def serve_uvicorn(settings: GatewaySettings) -> None:
    import uvicorn

    from kurs_gateway.app import served_app

    config = uvicorn.Config(
        served_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout_seconds)),
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
