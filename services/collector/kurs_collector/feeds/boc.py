"""Bank of Canada daily exchange rates through the Valet API (group FX_RATES_DAILY, JSON).

GET /valet/observations/group/FX_RATES_DAILY/json?start_date=YYYY-MM-DD (latest: the last ten
days) or ?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD (ranges, one request for any range).
Shape (4-space indented JSON, as recorded):

    {"terms": {...}, "seriesDetail": {"FXUSDCAD": {"label": "USD/CAD", ...}, ...},
     "observations": [{"d": "2025-01-03", "FXUSDCAD": {"v": "1.4442"}, ...}, ...]}

A group answer also carries "groupDetail". Values: Canadian dollars per one unit of the
foreign currency (label BASE/CAD), published once a day by 16:30 Eastern time. `recent=N` is
not used for the latest figures: on a group it answers the last N observations of every
series, so discontinued ones (FXMYRCAD, FXTHBCAD, FXVNDCAD: 2019-12-31) come back as if new.

Tolerant, strict: a series the answer does not describe, a label that is not BASE/QUOTE, a
row without a readable date or a figure that is not a number is reported and skipped; a cell
without "v" (Valet writes {"e": -64} on a closed day) is no figure. A body that is not a
Valet observations answer fails the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from kurs_collector.checks import load_json
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.feeds.pairs import price_text
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

TORONTO = ZoneInfo("America/Toronto")
CANADA = Calendar("Canada", frozenset({(1, 1), (7, 1), (11, 11), (12, 25), (12, 26)}), frozenset({-2}))
PATH = "/valet/observations/group/FX_RATES_DAILY/json"


class BocFeed(HttpFeed):
    adapter = "boc"
    source = "boc"
    description = "Bank of Canada daily exchange rates (Valet FX_RATES_DAILY)"
    schedule = Schedule(TORONTO, dt.time(16, 30), CANADA, label="16:30 ET on Canadian business days")
    supports_range = True

    def latest_requests(self) -> list[Request]:
        start = self.ctx.clock().date() - dt.timedelta(days=10)
        return [Request(PATH, (("start_date", start.isoformat()),))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        params = (("start_date", start.isoformat()), ("end_date", end.isoformat()))
        return [Request(PATH, params, conditional=False)]

    def _pairs(self, details: dict[str, Any]) -> dict[str, tuple[str, str]]:
        pairs: dict[str, tuple[str, str]] = {}
        for series, detail in details.items():
            label = detail.get("label", "") if isinstance(detail, dict) else ""
            base, _, quote = str(label).partition("/")
            if len(base.strip()) != 3 or len(quote.strip()) != 3:
                self.report(f"series {series}: label {str(label)[:40]!r} is not BASE/QUOTE; skipped")
                continue
            pairs[series] = (base.strip(), quote.strip())
        return pairs

    def parse(self, payload: Payload) -> list[Observation]:
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("observations"), list):
            raise FeedError("Valet reply without an observations list")
        details = doc.get("seriesDetail")
        if not isinstance(details, dict):
            raise FeedError("Valet reply without seriesDetail")
        pairs = self._pairs(details)
        undescribed: set[str] = set()
        out: list[Observation] = []
        for row in doc["observations"]:
            try:
                if not isinstance(row, dict):
                    raise ValueError
                day = dt.date.fromisoformat(str(row.get("d")))
            except ValueError:
                self.report(f"an observation without a readable date ({str(row)[:60]}); skipped")
                continue
            for series, cell in row.items():
                if series == "d":
                    continue
                if series not in pairs:
                    if series not in details and series not in undescribed:
                        undescribed.add(series)
                        self.report(f"series {series[:40]} is not described in seriesDetail; skipped")
                    continue
                value = cell.get("v") if isinstance(cell, dict) else None
                if value is None or value == "":
                    continue  # no figure that day
                base, quote = pairs[series]
                try:
                    figure = price_text(value, f"{base}/{quote} {day}", keep_non_finite=True)
                except FeedError as exc:
                    self.report(f"{exc}; figure skipped")
                    continue
                out.append(
                    self.observation(
                        base, quote, figure, day, self.schedule.observation_instant(day), payload.fetched_at
                    )
                )
        return out
