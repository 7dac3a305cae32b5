"""Bank of Russia official rates, daily XML (windows-1251).

GET /scripts/XML_daily.asp?date_req=15/01/2025

    <?xml version="1.0" encoding="windows-1251"?>
    <ValCurs Date="15.01.2025" name="Foreign Currency Market">
    <Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode><Nominal>1</Nominal>
    <Name>Доллар США</Name><Value>101,6797</Value><VunitRate>101,6797</VunitRate></Valute>

Value is roubles per `Nominal` units, with a decimal comma: divided exactly (10 HKD,
100 JPY, 10000 IDR, ...). The rates dated D are set on the business day before and apply
from D; the feed asks for today's (Moscow) date, so a figure is never dated in the future.
A body that is not windows-1251 as declared (UTF-8 Cyrillic, say) is refused.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import NOT_CURRENCIES, comma_decimal, parse_xml, per_unit
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

MOSCOW = ZoneInfo("Europe/Moscow")
# Rates are set Tuesday to Saturday (the Saturday rates also apply on Sunday and Monday).
RUSSIA = Calendar(
    "Russia (rate dates)",
    frozenset({(1, 1), (1, 2), (1, 3), (1, 7)}),
    frozenset(),
    frozenset({1, 2, 3, 4, 5}),
)
PATH = "/scripts/XML_daily.asp"
MAX_DAYS_PER_RANGE = 400


def looks_utf8_cyrillic(body: bytes) -> bool:
    """UTF-8 Cyrillic (D0/D1 lead bytes) decodes cleanly as UTF-8; real windows-1251 does not."""
    if b"\xd0" not in body and b"\xd1" not in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class CbrFeed(HttpFeed):
    adapter = "cbr"
    source = "cbr"
    description = "Bank of Russia official rates (XML_daily, windows-1251, Nominal applied)"
    schedule = Schedule(MOSCOW, dt.time(0, 0), RUSSIA, label="dated rates, from 00:00 Moscow")
    supports_range = True

    def _request(self, day: dt.date, conditional: bool = True) -> Request:
        return Request(PATH, (("date_req", day.strftime("%d/%m/%Y")),), conditional=conditional)

    def latest_requests(self) -> list[Request]:
        return [self._request(self.ctx.clock().astimezone(MOSCOW).date())]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        days = self.schedule.calendar.business_days(start, end)
        if len(days) > MAX_DAYS_PER_RANGE:
            raise FeedError(f"at most {MAX_DAYS_PER_RANGE} days per backfill; split the range")
        return [self._request(day, conditional=False) for day in days]

    def parse(self, payload: Payload) -> list[Observation]:
        head = payload.body[:200].lower()
        if b"windows-1251" in head and looks_utf8_cyrillic(payload.body):
            raise FeedError("wrong encoding: the body is UTF-8 but declares windows-1251")
        root = parse_xml(payload.body, "ValCurs XML")
        if root.tag != "ValCurs":
            raise FeedError(f"not a ValCurs document (root element {root.tag!r})")
        try:
            day = dt.datetime.strptime(root.get("Date", ""), "%d.%m.%Y").date()  # noqa: DTZ007 - a date
        except ValueError:
            raise FeedError(f"bad ValCurs Date {root.get('Date')!r}") from None
        observed = self.schedule.observation_instant(day)
        out: list[Observation] = []
        for valute in root.findall("Valute"):
            code = (valute.findtext("CharCode") or "").strip()
            nominal = (valute.findtext("Nominal") or "").strip()
            raw = (valute.findtext("Value") or "").strip()
            if not code or not nominal or not raw:
                raise FeedError(f"{day}: a Valute without CharCode, Nominal or Value")
            if code in NOT_CURRENCIES:
                continue
            value = per_unit(comma_decimal(raw, f"{day} {code}"), nominal, f"{day} {code}")
            out.append(self.observation(code, "RUB", value, day, observed, payload.fetched_at))
        if not out:
            raise FeedError(f"{day}: no rates in the document")
        return out
