"""US Federal Reserve H.10 foreign exchange rates (noon buying rates in New York).

Two ways to the same release, both source "fed":

* fed-fred: FRED's series observations API,
  GET /fred/series/observations?series_id=DEXUSEU&api_key=...&file_type=json
      &observation_start=YYYY-MM-DD&observation_end=YYYY-MM-DD
  -> {"observations": [{"date": "2025-01-13", "value": "1.0245"}, {"date": ..., "value": "."}]}
  "." means no figure. The API key comes from the environment variable the configuration
  names (api_key_env, default KURS_COLLECTOR_FRED_API_KEY); without one the feed fails
  with that message.
* fed-h10: the Board's Data Download Program CSV,
  GET /datadownload/Output.aspx?rel=H10&series=<package>&lastobs=10&from=&to=
      &filetype=csv&label=include&layout=seriescolumn
  Header rows ("Series Description", "Unit:", "Multiplier:", "Currency:",
  "Unique Identifier:", then "Time Period" with the series names), then one row per day;
  `ND` = no data.

Quote directions are mixed: RXI$US_N.B.EU / DEXUSEU are US dollars per euro, RXI_N.B.JA /
DEXJPUS are yen per US dollar. Each observation keeps the direction as published. The
release is weekly (Mondays, about 16:15 New York time) and covers the previous week.

The DDP's "Currency:" row names the foreign currency in today's package downloads
("EUR" above RXI$US_N.B.EU) and the currency of the figure in older ones ("USD" there); both
are accepted, anything else is a contradiction. Tolerant, strict: a series the feed does not
know (an index, a new country), a contradiction, a row without a readable date or a figure
that is not a number is reported and skipped; a body that is not a DDP table (no "Time
Period" row) or a FRED error reply fails the run.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from kurs_collector.checks import csv_rows, decimal_text, decode, load_json, rows_match_header, scaled
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import Calendar, Schedule
from kurs_common.observation import Observation

NEW_YORK = ZoneInfo("America/New_York")
US = Calendar("US", frozenset({(1, 1), (6, 19), (7, 4), (11, 11), (12, 25)}))
# Published on Mondays (16:15 ET) for the previous week; figures are noon buying rates.
H10_SCHEDULE = Schedule(
    NEW_YORK, dt.time(12, 0), US, weekly_on=0, label="weekly, Mondays for the week before"
)

# FRED series -> (base, quote): the value is units of quote per one base. Every daily H.10
# series FRED carries: DEXUS.. (AL, EU, NZ, UK) are US dollars per foreign unit, DEX..US the
# foreign currency per US dollar. Codes and directions as FRED titles them ("U.S. Dollars to
# One Euro", "Japanese Yen to One U.S. Dollar"); the same table is in ontofractal/quandlex
# lib/quandlex/forex.ex (commit eda213df). DEXVZUS is quoted in VEF, which the screen refuses
# (not in kurs_common.currencies).
FRED_SERIES = {
    "DEXUSEU": ("EUR", "USD"),
    "DEXUSUK": ("GBP", "USD"),
    "DEXUSAL": ("AUD", "USD"),
    "DEXUSNZ": ("NZD", "USD"),
    "DEXBZUS": ("USD", "BRL"),
    "DEXCAUS": ("USD", "CAD"),
    "DEXCHUS": ("USD", "CNY"),
    "DEXDNUS": ("USD", "DKK"),
    "DEXHKUS": ("USD", "HKD"),
    "DEXINUS": ("USD", "INR"),
    "DEXJPUS": ("USD", "JPY"),
    "DEXKOUS": ("USD", "KRW"),
    "DEXMAUS": ("USD", "MYR"),
    "DEXMXUS": ("USD", "MXN"),
    "DEXNOUS": ("USD", "NOK"),
    "DEXSDUS": ("USD", "SEK"),
    "DEXSFUS": ("USD", "ZAR"),
    "DEXSIUS": ("USD", "SGD"),
    "DEXSLUS": ("USD", "LKR"),
    "DEXSZUS": ("USD", "CHF"),
    "DEXTAUS": ("USD", "TWD"),
    "DEXTHUS": ("USD", "THB"),
    "DEXVZUS": ("USD", "VEF"),
}
DEFAULT_FRED_SERIES = ["DEXUSEU", "DEXUSUK", "DEXJPUS", "DEXCAUS", "DEXSZUS", "DEXUSAL"]

# H.10 country codes (the last part of RXI_N.B.xx / RXI$US_N.B.xx) -> ISO 4217.
H10_COUNTRIES = {
    "EU": "EUR",
    "UK": "GBP",
    "AL": "AUD",
    "NZ": "NZD",
    "JA": "JPY",
    "CA": "CAD",
    "SZ": "CHF",
    "CH": "CNY",
    "DN": "DKK",
    "NO": "NOK",
    "SD": "SEK",
    "MX": "MXN",
    "IN": "INR",
    "KO": "KRW",
    "BZ": "BRL",
    "HK": "HKD",
    "SI": "SGD",
    "SF": "ZAR",
    "TH": "THB",
    "TA": "TWD",
    "MA": "MYR",
    "SL": "LKR",
}


class FredFeed(HttpFeed):
    adapter = "fed-fred"
    source = "fed"
    description = "Federal Reserve H.10 through FRED series observations (API key required)"
    schedule = H10_SCHEDULE
    supports_range = True

    @property
    def series(self) -> list[str]:
        value = self.option("series", DEFAULT_FRED_SERIES)
        codes = [str(v) for v in value] if isinstance(value, list) else DEFAULT_FRED_SERIES
        unknown = [c for c in codes if c not in FRED_SERIES]
        if unknown:
            raise FeedError(f"unknown FRED series {', '.join(unknown)} in the configuration")
        return codes

    def _api_key(self) -> str:
        env = str(self.option("api_key_env", "KURS_COLLECTOR_FRED_API_KEY"))
        key = self.ctx.secrets.get(env) or os.environ.get(env, "")
        if not key:
            raise FeedError(f"no FRED API key: set {env}")
        return key

    def _requests(self, start: dt.date, end: dt.date) -> list[Request]:
        key = self._api_key()
        return [
            Request(
                "/fred/series/observations",
                (
                    ("series_id", series),
                    ("api_key", key),
                    ("file_type", "json"),
                    ("observation_start", start.isoformat()),
                    ("observation_end", end.isoformat()),
                ),
                # All series of a day go out in one batch: fetch them all or none.
                conditional=False,
            )
            for series in self.series
        ]

    def latest_requests(self) -> list[Request]:
        today = self.ctx.clock().date()
        return self._requests(today - dt.timedelta(days=14), today)

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        return self._requests(start, end)

    def parse(self, payload: Payload) -> list[Observation]:
        series = dict(payload_params(payload.url)).get("series_id", "")
        if series not in FRED_SERIES:
            raise FeedError(f"reply for unknown series {series!r}")
        base, quote = FRED_SERIES[series]
        doc = load_json(payload.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("observations"), list):
            message = doc.get("error_message") if isinstance(doc, dict) else None
            raise FeedError(f"FRED reply without observations{': ' + str(message) if message else ''}")
        out: list[Observation] = []
        for row in doc["observations"]:
            if not isinstance(row, dict) or "date" not in row or "value" not in row:
                self.report(f"{series}: an observation without date or value ({str(row)[:60]}); skipped")
                continue
            value = str(row["value"]).strip()
            if value in (".", ""):
                continue
            try:
                day = dt.date.fromisoformat(str(row["date"]))
                decimal_text(value, f"{base}/{quote} {day}")
            except ValueError:
                self.report(f"{series}: date {str(row['date'])[:20]!r} is not YYYY-MM-DD; skipped")
                continue
            except FeedError as exc:
                self.report(f"{series}: {exc}; figure skipped")
                continue
            out.append(
                self.observation(
                    base, quote, value, day, self.schedule.observation_instant(day), payload.fetched_at
                )
            )
        return out


def payload_params(url: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(url).query)


class FedH10Feed(HttpFeed):
    adapter = "fed-h10"
    source = "fed"
    description = "Federal Reserve H.10 through the Board's Data Download Program (CSV)"
    schedule = H10_SCHEDULE
    supports_range = True

    def _params(self, **extra: str) -> tuple[tuple[str, str], ...]:
        package = str(self.option("package", "60f32914ab61dfab590e0e470153e3ae"))
        return (
            ("rel", "H10"),
            ("series", package),
            ("lastobs", extra.get("lastobs", "")),
            ("from", extra.get("start", "")),
            ("to", extra.get("end", "")),
            ("filetype", "csv"),
            ("label", "include"),
            ("layout", "seriescolumn"),
            # The DDP's own download link for a package ends with type=package (as recorded in
            # the URLs open-source H.10 clients use for this package).
            ("type", "package"),
        )

    def latest_requests(self) -> list[Request]:
        return [Request("/datadownload/Output.aspx", self._params(lastobs="10"))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        params = self._params(start=start.strftime("%m/%d/%Y"), end=end.strftime("%m/%d/%Y"))
        return [Request("/datadownload/Output.aspx", params, conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        rows = [r for r in csv_rows(decode(payload.body)) if r]
        meta: dict[str, list[str]] = {}
        names: list[str] | None = None
        start = 0
        for index, row in enumerate(rows):
            label = row[0].strip()
            if label == "Time Period":
                names = [c.strip() for c in row[1:]]
                start = index + 1
                break
            meta[label.rstrip(":").strip()] = [c.strip() for c in row[1:]]
        if names is None:
            raise FeedError("DDP CSV without its 'Time Period' header row")
        rows_match_header(rows[start:], len(names) + 1, start + 1)
        columns = [c for c in (self._column(name, i, meta) for i, name in enumerate(names)) if c]
        out: list[Observation] = []
        for line, row in enumerate(rows[start:], start=start + 1):
            try:
                day = dt.date.fromisoformat(row[0].strip())
            except ValueError:
                self.report(f"line {line}: date {row[0][:20]!r} is not YYYY-MM-DD; row skipped")
                continue
            for index, base, quote, multiplier in columns:
                value = row[index + 1].strip()
                if value in ("ND", "NA", ""):
                    continue
                try:
                    number = decimal_text(value, f"{base}/{quote} {day}")
                    text = value if multiplier == "1" else scaled(number, 1, decimal_text(multiplier))
                except FeedError as exc:
                    self.report(f"line {line} {names[index]}: {exc}; figure skipped")
                    continue
                out.append(
                    self.observation(
                        base, quote, text, day, self.schedule.observation_instant(day), payload.fetched_at
                    )
                )
        return out

    def _column(self, name: str, index: int, meta: dict[str, list[str]]) -> tuple[int, str, str, str] | None:
        """(index, base, quote, multiplier) of a series column: RXI$US_N.B.xx is USD per xx,
        RXI_N.B.xx is xx per USD. None (reported) for a series this feed cannot read."""

        def row(label: str) -> str:
            values = meta.get(label, [])
            return values[index].strip() if index < len(values) else ""

        prefix, _, country = name.rpartition(".")
        foreign = H10_COUNTRIES.get(country)
        if foreign is None or prefix not in ("RXI$US_N.B", "RXI_N.B"):
            self.report(f"series {name[:40]!r} is not a known H.10 exchange rate; its column is skipped")
            return None
        base, quote = (foreign, "USD") if prefix == "RXI$US_N.B" else ("USD", foreign)
        currency, unit = row("Currency"), row("Unit")
        per = unit.partition("_Per_")[2] if "_Per_" in unit else ""
        if (currency and currency not in (base, quote)) or (per and per != base):
            self.report(
                f"series {name}: Currency row {currency!r} / Unit row {unit!r} contradict {base}/{quote}; "
                "its column is skipped"
            )
            return None
        return index, base, quote, row("Multiplier") or "1"
