"""Czech National Bank: the daily exchange rate fixing, as text files or through the JSON API.

Text (`cnb`, base URL www.cnb.cz):

    GET .../central-bank-exchange-rate-fixing/daily.txt?date=15.01.2025   one fixing
    GET .../central-bank-exchange-rate-fixing/year.txt?year=2025          a year, one request

    15 Jan 2025 #10
    Country|Currency|Amount|Code|Rate
    Japan|yen|100|JPY|15.456

The Czech page writes "21.04.2000 #80", `země|měna|množství|kód|kurz` and decimal commas; old
files end with a second table of legacy denominations (`země|denominace|...|poměr`), which is
not a fixing and is skipped. The year file has a `Date|1 AUD|100 JPY|...` header (repeated
when the list of currencies changes) and one `DD.MM.YYYY|...` line per fixing.

JSON (`cnb-api`, base URL api.cnb.cz):

    GET /cnbapi/exrates/daily?date=2026-03-16&lang=EN          one fixing
    GET /cnbapi/exrates/daily-year?year=2026&lang=EN            a year, one request

    {"rates":[{"validFor":"2026-03-16","order":52,"country":"Japan","currency":"yen",
               "amount":100,"currencyCode":"JPY","rate":13.377}, ...]}

`rate` is a JSON number: read as the decimal written in the body (never a binary float).

Rates are koruna per `Amount` units (100 JPY, 1000 IDR, ...): divided exactly. Fixed at 14:30
Prague time on Czech business days; a date without a fixing answers with the previous fixing
(its own date in the body), so days are taken from the body, never from the request. A figure
that cannot be read is reported and skipped; the rest of the fixing still counts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from kurs_collector.checks import NOT_CURRENCIES, comma_decimal, decode, load_json, per_unit
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
FOLDER = "/en/financial-markets/foreign-exchange-market/central-bank-exchange-rate-fixing/"
PATH = f"{FOLDER}central-bank-exchange-rate-fixing/daily.txt"
YEAR_PATH = f"{FOLDER}central-bank-exchange-rate-fixing/year.txt"
API_DAILY = "/cnbapi/exrates/daily"
API_YEAR = "/cnbapi/exrates/daily-year"
COLUMNS = (["country", "currency", "amount", "code", "rate"], ["země", "měna", "množství", "kód", "kurz"])
SCHEDULE = Schedule(PRAGUE, dt.time(14, 30), CZECHIA, label="14:30 Prague on Czech business days")


def parse_header_date(line: str) -> dt.date:
    text = line.split("#", 1)[0].strip()
    for fmt in ("%d %b %Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise FeedError(f"first line {line[:40]!r} is not 'DD Mon YYYY #N'")


def years(start: dt.date, end: dt.date) -> list[int]:
    return list(range(start.year, end.year + 1))


class CnbFeed(HttpFeed):
    adapter = "cnb"
    source = "cnb"
    description = "Czech National Bank daily fixing (daily.txt / year.txt, Amount divisor applied)"
    schedule = SCHEDULE
    supports_range = True

    def latest_requests(self) -> list[Request]:
        return [Request(PATH)]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        return [Request(YEAR_PATH, (("year", str(y)),), conditional=False) for y in years(start, end)]

    def parse(self, payload: Payload) -> list[Observation]:
        lines = [line for line in decode(payload.body).splitlines() if line.strip()]
        if lines and lines[0].lower().startswith(("date|", "datum|")):
            return self._parse_year(lines, payload)
        if len(lines) < 2:
            raise FeedError("fixing file without rates")
        day = parse_header_date(lines[0])
        if [h.strip().lower() for h in lines[1].split("|")] not in COLUMNS:
            raise FeedError(f"unexpected column line {lines[1][:60]!r}")
        observed = self.schedule.observation_instant(day)
        out: list[Observation] = []
        for number, line in enumerate(lines[2:], start=3):
            cells = [c.strip() for c in line.split("|")]
            if len(cells) != 5:
                raise FeedError(f"line {number} has {len(cells)} fields, expected 5; truncated?")
            if cells[4].lower() in ("rate", "kurz", "poměr"):
                break  # the legacy denominations table of old files: not a fixing
            amount, code, rate = cells[2], cells[3], cells[4]
            out.extend(self._figure(code, amount, rate, day, observed, number, payload))
        return out

    def _parse_year(self, lines: list[str], payload: Payload) -> list[Observation]:
        units: list[tuple[str, str]] = []
        out: list[Observation] = []
        for number, line in enumerate(lines, start=1):
            cells = [c.strip() for c in line.split("|")]
            if cells[0].lower() in ("date", "datum"):
                units = []
                for head in cells[1:]:
                    amount, _, code = head.partition(" ")
                    units.append((amount, code.strip()))
                continue
            if len(cells) != len(units) + 1:
                expected = len(units) + 1
                raise FeedError(f"line {number} has {len(cells)} fields, expected {expected}; truncated?")
            try:
                day = dt.datetime.strptime(cells[0], "%d.%m.%Y").date()  # noqa: DTZ007 - a date
            except ValueError:
                raise FeedError(f"line {number}: bad date {cells[0]!r}") from None
            observed = self.schedule.observation_instant(day)
            for (amount, code), rate in zip(units, cells[1:], strict=True):
                if rate:
                    out.extend(self._figure(code, amount, rate, day, observed, number, payload))
        return out

    def _figure(
        self,
        code: str,
        amount: str,
        rate: str,
        day: dt.date,
        observed: dt.datetime,
        number: int,
        payload: Payload,
    ) -> list[Observation]:
        """One CZK figure per `amount` units of `code`; [] for a non-currency or an unreadable figure."""
        if code in NOT_CURRENCIES:
            return []
        try:
            value = per_unit(comma_decimal(rate, "rate"), amount, "Amount")
        except FeedError as exc:
            self.report(f"{code}/CZK {day}: line {number} unreadable ({exc})")
            return []
        return [self.observation(code, "CZK", value, day, observed, payload.fetched_at)]


class CnbApiFeed(HttpFeed):
    adapter = "cnb-api"
    source = "cnb"
    description = "Czech National Bank daily fixing (JSON API, amount divisor applied)"
    schedule = SCHEDULE
    supports_range = True

    def latest_requests(self) -> list[Request]:
        today = self.ctx.clock().astimezone(PRAGUE).date()
        return [Request(API_DAILY, (("date", today.isoformat()), ("lang", "EN")))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        params = [(("year", str(y)), ("lang", "EN")) for y in years(start, end)]
        return [Request(API_YEAR, p, conditional=False) for p in params]

    def parse(self, payload: Payload) -> list[Observation]:
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("rates"), list):
            raise FeedError('CNB reply is not {"rates": [...]}')
        out: list[Observation] = []
        for index, rate in enumerate(doc["rates"]):
            obs = self._one(rate, index, payload)
            if obs is not None:
                out.append(obs)
        return out

    def _one(self, rate: Any, index: int, payload: Payload) -> Observation | None:
        if not isinstance(rate, dict):
            self.report(f"rates[{index}]: not an object")
            return None
        code = str(rate.get("currencyCode", "")).strip()
        if code in NOT_CURRENCIES:
            return None
        try:
            day = dt.date.fromisoformat(str(rate.get("validFor")))
            value = rate.get("rate")
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                raise FeedError(f"rate {value!r} is not a number")
            text = format(value, "f") if isinstance(value, Decimal) else str(value)
            figure = per_unit(comma_decimal(text, "rate"), str(rate.get("amount")), "amount")
        except (ValueError, TypeError, FeedError) as exc:
            self.report(f"{code or '?'}/CZK rates[{index}]: unreadable ({exc})")
            return None
        observed = self.schedule.observation_instant(day)
        return self.observation(code, "CZK", figure, day, observed, payload.fetched_at)
