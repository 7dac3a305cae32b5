"""Norges Bank exchange rates through its SDMX API, CSV.

GET /api/data/EXR/B.USD+EUR+JPY.NOK.SP?endPeriod=2026-03-24&format=csvdata&startPeriod=2026-03-16
(query order as in a recorded request; `B..NOK.SP` asks for every series). A range is one
request whatever its length. `format=csvdata` answers comma-separated codes only:

    FREQ,BASE_CUR,QUOTE_CUR,TENOR,DECIMALS,CALCULATED,UNIT_MULT,COLLECTION,TIME_PERIOD,OBS_VALUE
    B,JPY,NOK,SP,4,false,2,C,2026-03-16,6.1037

The older `format=csv` answer (semicolons, a label column next to each code) is read too;
columns are found by name, so extra or reordered columns do not matter.

OBS_VALUE is kroner per 10^UNIT_MULT units of BASE_CUR: UNIT_MULT 2 for JPY, SEK, DKK, ...
so 6.1037 for JPY is 0.061037 NOK per yen. The series TWI and I44 are exchange-rate indices
and XDR is the IMF's SDR: none is a currency, all three are skipped. A figure that cannot be
read is reported and skipped; the rest of the file still counts. Published around 16:00 Oslo
time on Norwegian business days.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import NOT_CURRENCIES, comma_decimal, csv_rows, decode, rows_match_header, scaled
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
# Series of the EXR flow that are not currencies: the trade-weighted index and the import-weighted I44.
INDICES = frozenset({"TWI", "I44"})
LATEST_DAYS = 10  # the latest request asks for the last ten days (a long weekend plus Easter fits)
NEEDED = ("BASE_CUR", "QUOTE_CUR", "UNIT_MULT", "TIME_PERIOD", "OBS_VALUE")


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

    def _request(self, start: dt.date, end: dt.date, conditional: bool) -> Request:
        params = (("endPeriod", end.isoformat()), ("format", "csvdata"), ("startPeriod", start.isoformat()))
        return Request(self._path(), params, conditional=conditional)

    def latest_requests(self) -> list[Request]:
        today = self.ctx.clock().astimezone(OSLO).date()
        return [self._request(today - dt.timedelta(days=LATEST_DAYS), today, True)]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        return [self._request(start, end, False)]

    def parse(self, payload: Payload) -> list[Observation]:
        text = decode(payload.body)
        first_line = text.split("\n", 1)[0]
        rows = [r for r in csv_rows(text, delimiter=";" if ";" in first_line else ",") if r]
        header = [h.strip() for h in rows[0]] if rows else []
        missing = [n for n in NEEDED if n not in header]
        if missing:
            raise FeedError(f"SDMX CSV without column(s) {', '.join(missing)}")
        rows_match_header(rows[1:], len(header), 2)
        col = {name: header.index(name) for name in NEEDED}
        out: list[Observation] = []
        for line, row in enumerate(rows[1:], start=2):
            base, quote = row[col["BASE_CUR"]].strip(), row[col["QUOTE_CUR"]].strip()
            raw = row[col["OBS_VALUE"]].strip()
            if base in INDICES or base in NOT_CURRENCIES or raw in ("", "NaN"):
                continue
            what = f"line {line} {base}/{quote} {row[col['TIME_PERIOD']].strip()}"
            try:
                day = dt.date.fromisoformat(row[col["TIME_PERIOD"]].strip())
                exponent = int(row[col["UNIT_MULT"]].strip() or "0")
                if not 0 <= exponent <= 9:
                    raise FeedError(f"UNIT_MULT {exponent} out of range")
                value = scaled(comma_decimal(raw, "OBS_VALUE"), 10**exponent)
            except (ValueError, FeedError) as exc:
                self.report(f"{what}: unreadable figure ({exc})")
                continue
            out.append(
                self.observation(
                    base, quote, value, day, self.schedule.observation_instant(day), payload.fetched_at
                )
            )
        return out
