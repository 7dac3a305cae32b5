"""Czech National Bank: the daily exchange rate fixing, text format.

GET /en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/
    central-bank-exchange-rate-fixing/daily.txt?date=15.01.2025

    15 Jan 2025 #10
    Country|Currency|Amount|Code|Rate
    Australia|dollar|1|AUD|15.123
    Japan|yen|100|JPY|15.456

Rate is koruna per `Amount` units (100 JPY, 1000 IDR, ...): divided exactly. The Czech page
writes "15.01.2025 #10" and decimal commas; both are read. Fixed at 14:30 Prague time on
Czech business days; a date without a fixing answers with the previous fixing (its own date
in the first line), so days are taken from the file, never from the request.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import comma_decimal, decode, per_unit
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

PRAGUE = ZoneInfo("Europe/Prague")
CZECHIA = Calendar(
    "Czechia",
    frozenset(
        {(1, 1), (5, 1), (5, 8), (7, 5), (7, 6), (9, 28), (10, 28), (11, 17), (12, 24), (12, 25), (12, 26)}
    ),
    frozenset({-2, 1}),
)
PATH = (
    "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
    "central-bank-exchange-rate-fixing/daily.txt"
)
MAX_DAYS_PER_RANGE = 400


def parse_header_date(line: str) -> dt.date:
    text = line.split("#", 1)[0].strip()
    for fmt in ("%d %b %Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise FeedError(f"first line {line[:40]!r} is not 'DD Mon YYYY #N'")


class CnbFeed(HttpFeed):
    adapter = "cnb"
    source = "cnb"
    description = "Czech National Bank daily fixing (daily.txt, Amount divisor applied)"
    schedule = Schedule(PRAGUE, dt.time(14, 30), CZECHIA, label="14:30 Prague on Czech business days")
    supports_range = True

    def _request(self, day: dt.date, conditional: bool) -> Request:
        return Request(PATH, (("date", day.strftime("%d.%m.%Y")),), conditional=conditional)

    def latest_requests(self) -> list[Request]:
        return [Request(PATH)]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        days = self.schedule.calendar.business_days(start, end)
        if len(days) > MAX_DAYS_PER_RANGE:
            raise FeedError(f"at most {MAX_DAYS_PER_RANGE} fixings per backfill; split the range")
        return [self._request(day, False) for day in days]

    def parse(self, payload: Payload) -> list[Observation]:
        lines = [line for line in decode(payload.body).splitlines() if line.strip()]
        if len(lines) < 2:
            raise FeedError("fixing file without rates")
        day = parse_header_date(lines[0])
        header = [h.strip().lower() for h in lines[1].split("|")]
        if header not in (
            ["country", "currency", "amount", "code", "rate"],
            ["země", "měna", "množství", "kód", "kurz"],
        ):
            raise FeedError(f"unexpected column line {lines[1][:60]!r}")
        observed = self.schedule.observation_instant(day)
        out: list[Observation] = []
        for number, line in enumerate(lines[2:], start=3):
            cells = line.split("|")
            if len(cells) != 5:
                raise FeedError(f"line {number} has {len(cells)} fields, expected 5; truncated?")
            amount, code, rate = cells[2].strip(), cells[3].strip(), cells[4].strip()
            value = per_unit(comma_decimal(rate, f"line {number}"), amount, f"line {number} {code}")
            out.append(self.observation(code, "CZK", value, day, observed, payload.fetched_at))
        return out
