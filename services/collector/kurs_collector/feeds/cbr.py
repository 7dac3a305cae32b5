"""Bank of Russia official rates, XML (windows-1251).

GET /scripts/XML_daily.asp?date_req=25/04/2026    every currency on one date (latest runs)

    <?xml version="1.0" encoding="windows-1251"?><ValCurs Date="25.04.2026" name="Foreign
    Currency Market"><Valute ID="R01235"><NumCode>840</NumCode><CharCode>USD</CharCode>
    <Nominal>1</Nominal><Name>Доллар США</Name><Value>75,5273</Value>...</Valute>...

GET /scripts/XML_dynamic.asp?VAL_NM_RQ=R01010&date_req1=01/03/2026&date_req2=05/03/2026
    one currency over a range (backfill: one request per currency, not one per day)

    <ValCurs ID="R01010" DateRange1="01.03.2026" DateRange2="05.03.2026" name="Foreign Currency
    Market Dynamic"><Record Date="03.03.2026" Id="R01010"><Nominal>1</Nominal>
    <Value>54,7468</Value><VunitRate>54,7468</VunitRate></Record>...

Value is roubles per `Nominal` units, with a decimal comma: divided exactly (10 HKD,
100 JPY, 10000 IDR, ...). The rates dated D are set on the business day before and apply
from D; the feed asks for today's (Moscow) date, so a figure is never dated in the future.
A body that is not windows-1251 as declared (UTF-8 Cyrillic, say) is refused. A figure that
cannot be read is reported and skipped; the SDR (XDR) is not a currency. Backfills ask for the
`currencies` option (series IDs in SERIES).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
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
DYNAMIC_PATH = "/scripts/XML_dynamic.asp"
# The bank's internal series IDs (VAL_NM_RQ of XML_dynamic), from the ID attributes of recorded
# XML_daily answers (tests/fixtures/sources/cbr/README.md names them).
SERIES: dict[str, str] = {
    "AUD": "R01010", "AZN": "R01020A", "DZD": "R01030", "GBP": "R01035", "AMD": "R01060",
    "BHD": "R01080", "BYN": "R01090B", "BOB": "R01105", "BRL": "R01115", "HUF": "R01135",
    "VND": "R01150", "HKD": "R01200", "GEL": "R01210", "DKK": "R01215", "AED": "R01230",
    "USD": "R01235", "EUR": "R01239", "EGP": "R01240", "INR": "R01270", "IDR": "R01280",
    "IRR": "R01300", "KZT": "R01335", "CAD": "R01350", "QAR": "R01355", "KGS": "R01370",
    "CNY": "R01375", "MDL": "R01500", "NZD": "R01530", "NOK": "R01535", "PLN": "R01565",
    "RON": "R01585F", "SGD": "R01625", "TJS": "R01670", "THB": "R01675", "TRY": "R01700J",
    "TMT": "R01710A", "UZS": "R01717", "UAH": "R01720", "CZK": "R01760", "SEK": "R01770",
    "CHF": "R01775", "RSD": "R01805F", "ZAR": "R01810", "KRW": "R01815", "JPY": "R01820",
    "MMK": "R02005",
}  # fmt: skip
CODES = {series: code for code, series in SERIES.items()}
DEFAULT_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CNY", "CHF", "KZT", "TRY", "INR", "AED"]


def looks_utf8_cyrillic(body: bytes) -> bool:
    """UTF-8 Cyrillic (D0/D1 lead bytes) decodes cleanly as UTF-8; real windows-1251 does not."""
    if b"\xd0" not in body and b"\xd1" not in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def cbr_date(text: str | None, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(text or "", "%d.%m.%Y").date()  # noqa: DTZ007 - a date
    except ValueError:
        raise FeedError(f"bad {what} {text!r}") from None


class CbrFeed(HttpFeed):
    adapter = "cbr"
    source = "cbr"
    description = "Bank of Russia official rates (XML_daily / XML_dynamic, windows-1251, Nominal applied)"
    schedule = Schedule(MOSCOW, dt.time(0, 0), RUSSIA, label="dated rates, from 00:00 Moscow")
    supports_range = True

    @property
    def currencies(self) -> list[str]:
        value = self.option("currencies", DEFAULT_CURRENCIES)
        return [str(c) for c in value] if isinstance(value, list) else DEFAULT_CURRENCIES

    def latest_requests(self) -> list[Request]:
        today = self.ctx.clock().astimezone(MOSCOW).date()
        return [Request(PATH, (("date_req", today.strftime("%d/%m/%Y")),))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        """One XML_dynamic request per currency, whatever the length of the range."""
        unknown = [c for c in self.currencies if c not in SERIES]
        if unknown:
            raise FeedError(f"no Bank of Russia series ID known for {', '.join(unknown)}")
        first, last = start.strftime("%d/%m/%Y"), end.strftime("%d/%m/%Y")
        return [
            Request(
                DYNAMIC_PATH,
                (("VAL_NM_RQ", SERIES[code]), ("date_req1", first), ("date_req2", last)),
                conditional=False,
            )
            for code in self.currencies
        ]

    def parse(self, payload: Payload) -> list[Observation]:
        head = payload.body[:200].lower()
        if b"windows-1251" in head and looks_utf8_cyrillic(payload.body):
            raise FeedError("wrong encoding: the body is UTF-8 but declares windows-1251")
        root = parse_xml(payload.body, "ValCurs XML")
        if root.tag != "ValCurs":
            raise FeedError(f"not a ValCurs document (root element {root.tag!r})")
        if root.get("Date") is None and root.get("ID") is not None:
            return self._parse_dynamic(root, payload)
        day = cbr_date(root.get("Date"), "ValCurs Date")
        observed = self.schedule.observation_instant(day)
        out: list[Observation] = []
        valutes = root.findall("Valute")
        for valute in valutes:
            code = (valute.findtext("CharCode") or "").strip()
            if code in NOT_CURRENCIES:
                continue
            value = self._figure(valute, f"{code or '?'}/RUB {day}")
            if value is not None:
                out.append(self.observation(code, "RUB", value, day, observed, payload.fetched_at))
        if not valutes:
            raise FeedError(f"{day}: no rates in the document")
        return out

    def _figure(self, element: ET.Element, what: str) -> str | None:
        nominal = (element.findtext("Nominal") or "").strip()
        raw = (element.findtext("Value") or "").strip()
        try:
            if not nominal or not raw:
                raise FeedError("no Nominal or Value")
            return per_unit(comma_decimal(raw, "Value"), nominal, "Nominal")
        except FeedError as exc:
            self.report(f"{what}: unreadable ({exc})")
            return None

    def _parse_dynamic(self, root: ET.Element, payload: Payload) -> list[Observation]:
        series = root.get("ID", "")
        code = CODES.get(series)
        if code is None:
            raise FeedError(f"XML_dynamic for unknown series {series!r}")
        out: list[Observation] = []
        for record in root.findall("Record"):
            if record.get("Id", series) != series:
                self.report(f"{code}/RUB: a record of series {record.get('Id')!r} in {series}")
                continue
            try:
                day = cbr_date(record.get("Date"), "Record Date")
            except FeedError as exc:
                self.report(f"{code}/RUB: {exc}")
                continue
            value = self._figure(record, f"{code}/RUB {day}")
            if value is not None:
                observed = self.schedule.observation_instant(day)
                out.append(self.observation(code, "RUB", value, day, observed, payload.fetched_at))
        return out
