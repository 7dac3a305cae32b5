"""Norges Bank exchange rates through its SDMX API, CSV.

GET /api/data/EXR/B.USD+EUR+JPY.NOK.SP?format=csv&startPeriod=...&endPeriod=...&locale=en
(or lastNObservations=1). Semicolon-separated, codes and labels side by side:

    FREQ;Frequency;BASE_CUR;Base Currency;QUOTE_CUR;Quote Currency;TENOR;Tenor;DECIMALS;
    CALCULATED;UNIT_MULT;Unit Multiplier;COLLECTION;Collection Indicator;TIME_PERIOD;OBS_VALUE

OBS_VALUE is kroner per 10^UNIT_MULT units of BASE_CUR: UNIT_MULT 2 ("Hundreds") for JPY,
SEK, DKK, ... so 7.2345 for JPY is 0.072345 NOK per yen. Published around 16:00 Oslo time
on Norwegian business days.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import comma_decimal, csv_rows, decode, rows_match_header, scaled
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

OSLO = ZoneInfo("Europe/Oslo")
# 1 Jan, 1 and 17 May, 25/26 Dec; Maundy Thursday, Good Friday, Easter Monday, Ascension, Whit Monday.
NORWAY = Calendar(
    "Norway", frozenset({(1, 1), (5, 1), (5, 17), (12, 25), (12, 26)}), frozenset({-3, -2, 1, 39, 50})
)
DEFAULT_CURRENCIES = ["EUR", "USD", "GBP", "SEK", "DKK", "JPY", "CHF"]


class NorgesFeed(HttpFeed):
    adapter = "norges"
    source = "norges"
    description = "Norges Bank exchange rates (SDMX CSV, UNIT_MULT applied)"
    schedule = Schedule(OSLO, dt.time(16, 0), NORWAY, label="16:00 Oslo on Norwegian business days")
    supports_range = True

    def _path(self) -> str:
        value = self.option("currencies", DEFAULT_CURRENCIES)
        codes = [str(c) for c in value] if isinstance(value, list) else DEFAULT_CURRENCIES
        return f"/api/data/EXR/B.{'+'.join(codes)}.NOK.SP"

    def latest_requests(self) -> list[Request]:
        params = (("format", "csv"), ("lastNObservations", "5"), ("locale", "en"))
        return [Request(self._path(), params)]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        params = (
            ("format", "csv"),
            ("startPeriod", start.isoformat()),
            ("endPeriod", end.isoformat()),
            ("locale", "en"),
        )
        return [Request(self._path(), params, conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        text = decode(payload.body)
        first_line = text.split("\n", 1)[0]
        rows = [r for r in csv_rows(text, delimiter=";" if ";" in first_line else ",") if r]
        header = [h.strip() for h in rows[0]] if rows else []
        needed = ("BASE_CUR", "QUOTE_CUR", "UNIT_MULT", "TIME_PERIOD", "OBS_VALUE")
        missing = [n for n in needed if n not in header]
        if missing:
            raise FeedError(f"SDMX CSV without column(s) {', '.join(missing)}")
        rows_match_header(rows[1:], len(header), 2)
        col = {name: header.index(name) for name in needed}
        out: list[Observation] = []
        for line, row in enumerate(rows[1:], start=2):
            raw = row[col["OBS_VALUE"]].strip()
            if raw in ("", "NaN"):
                continue
            try:
                day = dt.date.fromisoformat(row[col["TIME_PERIOD"]].strip())
                exponent = int(row[col["UNIT_MULT"]].strip() or "0")
            except ValueError:
                raise FeedError(f"line {line}: bad TIME_PERIOD or UNIT_MULT") from None
            if not 0 <= exponent <= 9:
                raise FeedError(f"line {line}: UNIT_MULT {exponent} out of range")
            value = scaled(comma_decimal(raw, f"line {line}"), 10**exponent)
            base, quote = row[col["BASE_CUR"]].strip(), row[col["QUOTE_CUR"]].strip()
            out.append(
                self.observation(
                    base, quote, value, day, self.schedule.observation_instant(day), payload.fetched_at
                )
            )
        return out
