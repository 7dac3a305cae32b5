"""`python -m kurs_collector backfill --source ecb-sdmx --from 2025-01-01 --to 2025-01-31`

Fetches a date range from one configured source (one that serves ranges) and delivers it to
the validator at KURS_COLLECTOR_VALIDATOR_ADDRESS, batch by batch, each acknowledged before
the next. Idempotent: running it twice stores nothing twice. Like every network feed it
needs the live switch on and the source enabled in the sources file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass

from kurs_collector.config import ConfigError
from kurs_collector.delivery import Deliverer, DeliveryError
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.settings import CollectorSettings
from kurs_collector.sources import LIVE_OFF, build_network_feeds
from kurs_common.grpcserver import insecure_channel

log = logging.getLogger(__name__)

MAX_BACKFILL_DAYS = 366 * 30


class BackfillError(Exception):
    pass


@dataclass(frozen=True)
class BackfillResult:
    source: str
    days: int
    observations: int
    accepted: int
    rejected: int
    refused_by_collector: int


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kurs_collector backfill", description=__doc__)
    parser.add_argument("--source", required=True, help="feed id from the sources file (e.g. ecb-sdmx)")
    parser.add_argument("--from", dest="start", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    return parser.parse_args(argv)


async def backfill(settings: CollectorSettings, feed_id: str, start: dt.date, end: dt.date) -> BackfillResult:
    if start > end:
        raise BackfillError(f"--from {start} is after --to {end}")
    if (end - start).days > MAX_BACKFILL_DAYS:
        raise BackfillError(f"at most {MAX_BACKFILL_DAYS} days per backfill")
    try:
        network = build_network_feeds(settings)
    except ConfigError as exc:
        raise BackfillError(str(exc)) from exc
    try:
        feeds = {feed.id: (feed, enabled) for feed, enabled in network.feeds}
        if feed_id not in feeds:
            known = ", ".join(sorted(feeds)) or "none"
            raise BackfillError(f"--source: no source {feed_id!r} in the sources file (configured: {known})")
        feed, enabled = feeds[feed_id]
        if not enabled:
            raise BackfillError(f"{feed_id}: {network.disabled_reasons.get(feed_id, LIVE_OFF)}")
        if not isinstance(feed, HttpFeed) or not feed.supports_range:
            rangeable = sorted(f.id for f, _ in network.feeds if isinstance(f, HttpFeed) and f.supports_range)
            raise BackfillError(
                f"{feed_id} cannot fetch date ranges (sources that can: {', '.join(rangeable)})"
            )
        channel = insecure_channel(settings.validator_address)
        try:
            deliverer = Deliverer.for_settings(channel, settings)
            days = observations = accepted = rejected = 0
            async for batch in feed.collect_range(start, end):
                done = await deliverer.deliver(batch)
                days += 1
                observations += len(batch)
                accepted += done.accepted
                rejected += done.rejected
            return BackfillResult(feed_id, days, observations, accepted, rejected, len(feed.problems))
        except (FeedError, DeliveryError) as exc:
            raise BackfillError(str(exc)) from exc
        finally:
            await channel.close()
    finally:
        await network.aclose()
