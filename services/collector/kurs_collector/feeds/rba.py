"""Reserve Bank of Australia, statistical table F11.1 "Exchange Rates - Daily" (CSV).

GET /statistics/tables/csv/f11.1-data.csv - the current years, one file. Header block:

    F11.1  EXCHANGE RATES,,,
    Title,A$1=USD,Trade-weighted Index May 1970 = 100,A$1=CNY,...
    Description,AUD/USD Exchange Rate; see notes for further detail.,...
    Frequency,Daily,Daily,...
    Type,Indicative,Indicative,...
    Units,USD,Index,CNY,...
    (blank lines)
    Source,WM/Reuters,RBA,...
    Publication date,15-Jan-2025,...
    Series ID,FXRUSD,FXRTWI,FXRCR,...
    02-Jan-2025,0.6210,60.50,4.5451,...

Values are units of the `Units` currency per one Australian dollar, at 4pm Sydney time.
The trade-weighted index and the SDR are not currencies and are skipped; columns are mapped by
the `Units` row, so their order does not matter, and an empty cell is no figure (AED, PGK, CAD
and ZAR are empty in the early rows of the current file). A cell that cannot be read is
reported and skipped. The current file is UTF-8 with a byte-order mark; older ones were
Windows-1252: both decode.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import NOT_CURRENCIES, csv_rows, decimal_text
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

SYDNEY = ZoneInfo("Australia/Sydney")
AUSTRALIA = Calendar(
    "Australia", frozenset({(1, 1), (1, 26), (4, 25), (12, 25), (12, 26)}), frozenset({-2, 1})
)
PATH = "/statistics/tables/csv/f11.1-data.csv"


def decode_rba(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="strict")


class RbaFeed(HttpFeed):
    adapter = "rba"
    source = "rba"
    description = "Reserve Bank of Australia F11.1 daily exchange rates (CSV)"
    schedule = Schedule(SYDNEY, dt.time(16, 0), AUSTRALIA, label="4pm Sydney on Australian business days")
    supports_range = True  # the file holds the current years; a range is a filter

    def latest_requests(self) -> list[Request]:
        return [Request(PATH)]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        return [Request(PATH, conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        try:
            text = decode_rba(payload.body)
        except UnicodeDecodeError as exc:
            raise FeedError(f"neither UTF-8 nor Windows-1252: {exc.reason}") from None
        rows = csv_rows(text)
        if not rows or "F11.1" not in rows[0][0]:
            raise FeedError("not the F11.1 table")
        meta: dict[str, list[str]] = {}
        start = None
        for index, row in enumerate(rows):
            if row and row[0].strip() == "Series ID":
                start = index + 1
                break
            if row and row[0].strip():
                meta[row[0].strip()] = [c.strip() for c in row[1:]]
        if start is None or "Units" not in meta:
            raise FeedError("F11.1 without its Units and Series ID rows")
        units = meta["Units"]
        width = len(rows[start - 1])
        out: list[Observation] = []
        for line, row in enumerate(rows[start:], start=start + 1):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) != width:
                raise FeedError(f"line {line} has {len(row)} fields, the header has {width}; truncated?")
            try:
                day = dt.datetime.strptime(row[0].strip(), "%d-%b-%Y").date()  # noqa: DTZ007 - a date
            except ValueError:
                raise FeedError(f"line {line}: bad date {row[0]!r}") from None
            observed = self.schedule.observation_instant(day)
            for unit, cell in zip(units, row[1:], strict=False):
                value = cell.strip()
                if not value or unit == "Index" or unit in NOT_CURRENCIES:
                    continue
                try:
                    decimal_text(value, "value")
                except FeedError as exc:
                    self.report(f"AUD/{unit} {day}: line {line} unreadable ({exc})")
                    continue
                out.append(self.observation("AUD", unit, value, day, observed, payload.fetched_at))
        return out
