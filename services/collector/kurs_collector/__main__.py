"""python -m kurs_collector            serve until SIGTERM
python -m kurs_collector backfill   --source X --from YYYY-MM-DD --to YYYY-MM-DD
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

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


async def run_backfill(argv: list[str]) -> int:
    from kurs_collector.backfill import BackfillError, backfill, parse_args

    args = parse_args(argv)
    settings = CollectorSettings()
    setup_logging("collector", settings.log_level)
    try:
        result = await backfill(settings, args.source, args.start, args.end)
    except BackfillError as exc:
        print(f"backfill failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(result)))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "backfill":
        sys.exit(asyncio.run(run_backfill(sys.argv[2:])))
    asyncio.run(main())
