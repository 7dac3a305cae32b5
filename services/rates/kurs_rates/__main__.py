"""python -m kurs_rates [serve|migrate]

serve (default): settings -> logging/telemetry -> serve until SIGTERM.
migrate: apply the pending PostgreSQL migrations of KURS_DATABASE_URL and exit (the service
also applies them at start, under the same advisory lock).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

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


async def migrate() -> int:
    from kurs_rates.pg_schema import migrate_url

    settings = RatesSettings()
    setup_logging("rates", settings.log_level)
    url = settings.database_url
    if not url.startswith(("postgresql://", "postgres://")):
        print(f"migrate: KURS_DATABASE_URL must be a postgresql:// URL (SQLite migrates itself), got {url!r}")
        return 2
    applied = await migrate_url(url)
    print(f"migrate: applied {applied}" if applied else "migrate: schema is up to date")
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kurs_rates")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    if args.command == "migrate":
        return asyncio.run(migrate())
    asyncio.run(main())
    return 0


if __name__ == "__main__":
    sys.exit(cli())
