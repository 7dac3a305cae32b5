"""National Bank of Poland exchange rate tables through its API (JSON).

GET /api/exchangerates/tables/A/?format=json                 the latest table
GET /api/exchangerates/tables/A/2025-01-13/2025-01-15/?format=json   a range (<= 93 days)

    [{"table": "A", "no": "009/A/NBP/2025", "effectiveDate": "2025-01-15",
      "rates": [{"currency": "dolar amerykański", "code": "USD", "mid": 4.1512}, ...]}]

`mid` is zloty per one unit (JSON numbers, read as exact decimals). Table A (about 30
currencies) is published on Polish business days between 11:45 and 12:15 Warsaw time; table
B (the other currencies) on Wednesdays. A range without any table answers 404 "Brak danych"
(no data), which is an empty result, not an error. A rate that cannot be read is reported
and skipped; the rest of the table still counts. The SDR (XDR, table A) is not a currency.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from kurs_collector.checks import NOT_CURRENCIES, decimal_text, load_json
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

WARSAW = ZoneInfo("Europe/Warsaw")
_POLISH_FIXED = frozenset(
    {(1, 1), (1, 6), (5, 1), (5, 3), (8, 15), (11, 1), (11, 11), (12, 24), (12, 25), (12, 26)}
)
POLAND = Calendar("Poland", _POLISH_FIXED, frozenset({1, 60}))
WEDNESDAYS = Calendar("Poland (Wednesdays)", _POLISH_FIXED, frozenset({1, 60}), frozenset({2}))
MAX_RANGE_DAYS = 93


def mid_text(value: Any) -> str:
    """A JSON number as the digits written in the body ("4.4190" stays "4.4190")."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise FeedError(f"{value!r} is not a number")
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    decimal_text(text, "mid")
    return text


class NbpTableAFeed(HttpFeed):
    adapter = "nbp-a"
    source = "nbp"
    description = "National Bank of Poland table A (API, JSON)"
    schedule = Schedule(WARSAW, dt.time(12, 15), POLAND, label="12:15 Warsaw on Polish business days")
    supports_range = True
    table: ClassVar[str] = "A"

    def latest_requests(self) -> list[Request]:
        return [Request(f"/api/exchangerates/tables/{self.table}/", (("format", "json"),))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        out: list[Request] = []
        while start <= end:
            stop = min(end, start + dt.timedelta(days=MAX_RANGE_DAYS - 1))
            path = f"/api/exchangerates/tables/{self.table}/{start.isoformat()}/{stop.isoformat()}/"
            out.append(Request(path, (("format", "json"),), not_found_is_empty=True, conditional=False))
            start = stop + dt.timedelta(days=1)
        return out

    def parse(self, payload: Payload) -> list[Observation]:
        doc = load_json(payload.body)
        if not isinstance(doc, list):
            raise FeedError("NBP reply is not a list of tables")
        out: list[Observation] = []
        for table in doc:
            if not isinstance(table, dict) or not isinstance(table.get("rates"), list):
                raise FeedError("NBP table without rates")
            if table.get("table") != self.table:
                raise FeedError(f"asked for table {self.table}, got {table.get('table')!r}")
            try:
                day = dt.date.fromisoformat(str(table.get("effectiveDate")))
            except ValueError:
                raise FeedError(f"bad effectiveDate {table.get('effectiveDate')!r}") from None
            observed = self.schedule.observation_instant(day)
            for rate in table["rates"]:
                if not isinstance(rate, dict) or "code" not in rate or "mid" not in rate:
                    self.report(f"{day}: malformed rate {str(rate)[:80]}")
                    continue
                code = str(rate["code"]).strip()
                if code in NOT_CURRENCIES:
                    continue
                try:
                    value = mid_text(rate["mid"])
                except FeedError as exc:
                    self.report(f"{code}/PLN {day}: unreadable mid ({exc})")
                    continue
                out.append(self.observation(code, "PLN", value, day, observed, payload.fetched_at))
        return out


class NbpTableBFeed(NbpTableAFeed):
    adapter = "nbp-b"
    description = "National Bank of Poland table B, weekly (API, JSON)"
    schedule = Schedule(WARSAW, dt.time(12, 15), WEDNESDAYS, label="Wednesdays 12:15 Warsaw")
    table = "B"
