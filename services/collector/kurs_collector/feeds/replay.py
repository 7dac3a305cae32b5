"""replay: republishes a stretch of the ECB history as live ticks at a chosen speed.

Off by default. Each tick carries `replay=True` and source "replay", so clients and the store
can always tell replayed figures from real ones. Useful to watch streams move offline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from kurs_collector.feeds.ecb_history import default_history_path, parse_history_csv, read_history_zip
from kurs_common.observation import LIVE, Observation
from kurs_common.timeutil import utcnow


class ReplayFeed:
    id = "replay"
    source = "replay"
    description = "Republishes ECB history as live ticks (demo and stream tests; marked replay)"
    mode = "stream"

    def __init__(self, path: Path | None, start: dt.date | None, days_per_second: float, loop: bool) -> None:
        self.path = path or default_history_path()
        self.start = start
        self.interval = 1.0 / days_per_second if days_per_second > 0 else 1.0
        self.loop = loop

    async def _days(self) -> list[tuple[dt.date, dict[str, str]]]:
        text = await asyncio.to_thread(read_history_zip, self.path)
        by_day: dict[dt.date, dict[str, str]] = defaultdict(dict)
        for obs in await asyncio.to_thread(lambda: list(parse_history_csv(text))):
            by_day[dt.date.fromisoformat(obs.day)][obs.quote] = obs.value
        days = sorted(by_day.items())
        days = [d for d in days if d[0] >= self.start] or days[-30:] if self.start is not None else days[-30:]
        return days

    async def collect(self) -> AsyncIterator[Sequence[Observation]]:
        days = await self._days()
        while True:
            for _day, rates in days:
                now = utcnow()
                yield [
                    Observation(
                        source=self.source,
                        feed=self.id,
                        kind=LIVE,
                        base="EUR",
                        quote=code,
                        value=value,
                        day=now.date().isoformat(),
                        observed_at=now,
                        fetched_at=now,
                        replay=True,
                    )
                    for code, value in sorted(rates.items())
                ]
                await asyncio.sleep(self.interval)
            if not self.loop:
                return
