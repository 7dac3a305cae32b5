"""Bank of Canada daily exchange rates through the Valet API (group FX_RATES_DAILY, JSON).

GET /valet/observations/group/FX_RATES_DAILY/json?recent=5 (latest) or
?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD (ranges). Shape:

    {"groupDetail": {...}, "seriesDetail": {"FXUSDCAD": {"label": "USD/CAD", ...}, ...},
     "observations": [{"d": "2025-01-13", "FXUSDCAD": {"v": "1.4399"}, ...}, ...]}

Values: Canadian dollars per one unit of the foreign currency (label BASE/CAD), published
once a day by 16:30 Eastern time.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from kurs_collector.checks import decimal_text, decode
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.money import format_decimal
from kurs_common.observation import Observation

TORONTO = ZoneInfo("America/Toronto")
CANADA = Calendar("Canada", frozenset({(1, 1), (7, 1), (11, 11), (12, 25), (12, 26)}), frozenset({-2}))
PATH = "/valet/observations/group/FX_RATES_DAILY/json"


def load_json(body: bytes) -> Any:
    """JSON with every number kept as an exact Decimal (never a float)."""
    try:
        return json.loads(decode(body), parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise FeedError(f"malformed JSON ({exc.msg} at {exc.pos}); truncated?") from None


def number_text(value: Any, what: str) -> str:
    """A JSON number or numeric string as a plain decimal string."""
    if isinstance(value, bool) or value is None:
        raise FeedError(f"{what}: {value!r} is not a number")
    if isinstance(value, Decimal):
        return format_decimal(value) if value.is_finite() else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        decimal_text(value, what)
        return value.strip()
    raise FeedError(f"{what}: {value!r} is not a number")


class BocFeed(HttpFeed):
    adapter = "boc"
    source = "boc"
    description = "Bank of Canada daily exchange rates (Valet FX_RATES_DAILY)"
    schedule = Schedule(TORONTO, dt.time(16, 30), CANADA, label="16:30 ET on Canadian business days")
    supports_range = True

    def latest_requests(self) -> list[Request]:
        return [Request(PATH, (("recent", "5"),))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        params = (("start_date", start.isoformat()), ("end_date", end.isoformat()))
        return [Request(PATH, params, conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("observations"), list):
            raise FeedError("Valet reply without an observations list")
        details = doc.get("seriesDetail")
        if not isinstance(details, dict):
            raise FeedError("Valet reply without seriesDetail")
        pairs: dict[str, tuple[str, str]] = {}
        for series, detail in details.items():
            label = detail.get("label", "") if isinstance(detail, dict) else ""
            base, _, quote = str(label).partition("/")
            if not base or not quote:
                raise FeedError(f"series {series}: label {label!r} is not BASE/QUOTE")
            pairs[series] = (base.strip(), quote.strip())
        out: list[Observation] = []
        for row in doc["observations"]:
            if not isinstance(row, dict) or not isinstance(row.get("d"), str):
                raise FeedError(f"an observation without its date: {str(row)[:80]}")
            try:
                day = dt.date.fromisoformat(row["d"])
            except ValueError:
                raise FeedError(f"bad date {row['d']!r}") from None
            for series, cell in row.items():
                if series == "d":
                    continue
                if series not in pairs:
                    raise FeedError(f"{day}: series {series} is not described in seriesDetail")
                value = cell.get("v") if isinstance(cell, dict) else None
                if value is None or value == "":
                    continue  # no figure that day
                base, quote = pairs[series]
                out.append(
                    self.observation(
                        base,
                        quote,
                        number_text(value, f"{day} {series}"),
                        day,
                        self.schedule.observation_instant(day),
                        payload.fetched_at,
                    )
                )
        return out
