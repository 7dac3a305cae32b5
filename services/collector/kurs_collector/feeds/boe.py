"""Bank of England daily spot rates from the Interactive Statistical Database (IADB), CSV.

GET /boeapps/database/_iadb-fromshowcolumns.asp?csv.x=yes&Datefrom=01/Jan/2025&Dateto=now
    &SeriesCodes=XUDLUSS,XUDLERS,...&CSVF=TN&UsingCodes=Y&VPD=Y&VFD=N

CSVF=TN is a plain table: `DATE,XUDLUSS,XUDLERS` then rows like `02 Jan 2025,1.2529,1.2080`.
Each series in `SERIES` is units of the foreign currency per one pound sterling (spot, 4pm
London). An empty cell or `..` means no figure that day. On a bad query the IADB answers
HTTP 200 with an HTML page, which the fetch layer refuses.

The parser is tolerant of what a real answer may hold besides the requested table: a series
column it does not know (reported once, skipped), columns in any order, a BOM, a row whose
date or a cell whose figure cannot be read (reported, skipped). A body that is not an IADB
table at all (first column not DATE) fails the run.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import csv_rows, decimal_text, decode, rows_match_header
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

LONDON = ZoneInfo("Europe/London")
ENGLAND = Calendar("England", frozenset({(1, 1), (12, 25), (12, 26)}), frozenset({-2, 1}))
PATH = "/boeapps/database/_iadb-fromshowcolumns.asp"

# IADB series code -> the currency it quotes per one GBP (the "XUDL..S" / "XUDLBK.." sterling
# spot series). Checked against two independent open-source tables of the IADB codes, which
# agree on every entry: tiksn/TIKSN-Framework TIKSN.Core/Finance/ForeignExchange/Bank/
# BankOfEngland.cs (commit 098dc13e) and ontofractal/quandlex lib/quandlex/forex.ex (commit
# eda213df, the "GBP" table); and against the figures for 17 Mar 2026 (XUDLBK93 KRW
# 1986.5526, XUDLBK97 INR 123.2486). The USD-based twins (XUDL..D, XUDLBK64 INR/USD, ...) are
# deliberately absent: they quote against the dollar, not sterling.
SERIES = {
    "XUDLUSS": "USD",
    "XUDLERS": "EUR",
    "XUDLJYS": "JPY",
    "XUDLCDS": "CAD",
    "XUDLSFS": "CHF",
    "XUDLADS": "AUD",
    "XUDLNDS": "NZD",
    "XUDLSKS": "SEK",
    "XUDLNKS": "NOK",
    "XUDLDKS": "DKK",
    "XUDLHDS": "HKD",
    "XUDLSGS": "SGD",
    "XUDLZRS": "ZAR",
    "XUDLSRS": "SAR",
    "XUDLTWS": "TWD",
    "XUDLBK25": "CZK",
    "XUDLBK33": "HUF",
    "XUDLBK47": "PLN",
    "XUDLBK78": "ILS",
    "XUDLBK83": "MYR",
    "XUDLBK85": "RUB",
    "XUDLBK87": "THB",
    "XUDLBK89": "CNY",
    "XUDLBK93": "KRW",
    "XUDLBK95": "TRY",
    "XUDLBK97": "INR",
}
DEFAULT_SERIES = ["XUDLUSS", "XUDLERS", "XUDLJYS", "XUDLCDS", "XUDLSFS", "XUDLADS"]
NO_FIGURE = ("", "..")


def iadb_date(day: dt.date) -> str:
    return day.strftime("%d/%b/%Y")


class BoeFeed(HttpFeed):
    adapter = "boe"
    source = "boe"
    description = "Bank of England daily spot rates against sterling (IADB CSV)"
    schedule = Schedule(LONDON, dt.time(16, 0), ENGLAND, label="4pm London on English business days")
    supports_range = True

    @property
    def series(self) -> list[str]:
        value = self.option("series", DEFAULT_SERIES)
        codes = [str(v) for v in value] if isinstance(value, list) else DEFAULT_SERIES
        unknown = [c for c in codes if c not in SERIES]
        if unknown:
            raise FeedError(f"unknown IADB series {', '.join(unknown)} in the configuration")
        return codes

    def _params(self, start: str, end: str) -> tuple[tuple[str, str], ...]:
        return (
            ("csv.x", "yes"),
            ("Datefrom", start),
            ("Dateto", end),
            ("SeriesCodes", ",".join(self.series)),
            ("CSVF", "TN"),
            ("UsingCodes", "Y"),
            ("VPD", "Y"),
            ("VFD", "N"),
        )

    def latest_requests(self) -> list[Request]:
        start = self.ctx.clock().date() - dt.timedelta(days=10)
        return [Request(PATH, self._params(iadb_date(start), "now"))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        # One request for the whole range and every series: a year's backfill is one fetch.
        return [Request(PATH, self._params(iadb_date(start), iadb_date(end)), conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        rows = [r for r in csv_rows(decode(payload.body)) if r]
        if not rows:
            raise FeedError("empty IADB CSV")
        header = [h.strip() for h in rows[0]]
        if header[0].upper() != "DATE":
            raise FeedError(f"not an IADB table (first column {header[0][:40]!r})")
        rows_match_header(rows[1:], len(header), 2)
        columns: list[tuple[int, str, str]] = []  # (index, series, currency)
        for index, code in enumerate(header[1:], start=1):
            if code in SERIES:
                columns.append((index, code, SERIES[code]))
            else:
                self.report(
                    f"series {code[:40]!r} is not a known sterling spot series; its column is skipped"
                )
        out: list[Observation] = []
        for line, row in enumerate(rows[1:], start=2):
            try:
                day = dt.datetime.strptime(row[0].strip(), "%d %b %Y").date()  # noqa: DTZ007 - a date
            except ValueError:
                self.report(f"line {line}: date {row[0][:40]!r} is not DD Mon YYYY; row skipped")
                continue
            for index, code, currency in columns:
                value = row[index].strip()
                if value in NO_FIGURE:
                    continue
                try:
                    decimal_text(value, f"{code} {day}")
                except FeedError as exc:
                    self.report(f"GBP/{currency} {day}: {exc}; figure skipped")
                    continue
                out.append(
                    self.observation(
                        "GBP",
                        currency,
                        value,
                        day,
                        self.schedule.observation_instant(day),
                        payload.fetched_at,
                    )
                )
        return out
