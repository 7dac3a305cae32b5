"""ECB euro foreign exchange reference rates: the daily XML, the 90-day XML and the SDMX API.

* ecb-daily: /stats/eurofxref/eurofxref-daily.xml - today's rates (gesmes Envelope, one
  `<Cube time=...>` of `<Cube currency=... rate=...>`); after downtime it catches up from
  the 90-day file.
* ecb-90d: /stats/eurofxref/eurofxref-hist-90d.xml - the same shape, one Cube per day.
* ecb-sdmx: /service/data/EXR/D.<currencies>.EUR.SP00.A?format=csvdata - the SDMX 2.1 REST
  API (CSV: KEY,FREQ,CURRENCY,CURRENCY_DENOM,...,TIME_PERIOD,OBS_VALUE,...,UNIT_MULT) for
  ranges (startPeriod/endPeriod) and backfills.

Values: units of currency per one EUR, for the TARGET day, published around 16:00 CET.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from kurs_collector.checks import csv_rows, decimal_text, decode, parse_xml, rows_match_header, scaled
from kurs_collector.errors import FeedError
from kurs_collector.feeds.base import HttpFeed
from kurs_collector.http import Payload, Request
from kurs_collector.schedule import TARGET, Schedule
from kurs_common.observation import Observation

FRANKFURT = ZoneInfo("Europe/Berlin")
ECB_SCHEDULE = Schedule(FRANKFURT, dt.time(16, 0), TARGET, label="16:00 CET on TARGET days")
GESMES = "{http://www.gesmes.org/xml/2002-08-01}"
EUROFXREF = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
DAILY_PATH = "/stats/eurofxref/eurofxref-daily.xml"
HIST_90D_PATH = "/stats/eurofxref/eurofxref-hist-90d.xml"


def parse_eurofxref(body: bytes) -> list[tuple[dt.date, str, str]]:
    """(day, currency, rate) triples from eurofxref-daily.xml / eurofxref-hist-90d.xml."""
    root = parse_xml(body, "eurofxref XML")
    if root.tag != f"{GESMES}Envelope":
        raise FeedError(f"not a eurofxref document (root element {root.tag!r})")
    outer = root.find(f"{EUROFXREF}Cube")
    if outer is None:
        raise FeedError("eurofxref document without a Cube")
    out: list[tuple[dt.date, str, str]] = []
    for day_cube in outer.findall(f"{EUROFXREF}Cube"):
        text = day_cube.get("time")
        if text is None:
            raise FeedError("a day Cube without its time attribute")
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise FeedError(f"bad date {text!r}") from None
        for cube in day_cube.findall(f"{EUROFXREF}Cube"):
            currency, rate = cube.get("currency"), cube.get("rate")
            if currency is None or rate is None:
                raise FeedError(f"{day}: a rate Cube without currency or rate")
            out.append((day, currency.strip(), rate.strip()))
    return out


class _EcbXmlFeed(HttpFeed):
    source = "ecb"
    schedule = ECB_SCHEDULE
    path = DAILY_PATH

    def latest_requests(self) -> list[Request]:
        return [Request(self.path)]

    def catch_up_requests(self, after: dt.date) -> list[Request]:
        return [Request(HIST_90D_PATH)]

    def parse(self, payload: Payload) -> list[Observation]:
        out: list[Observation] = []
        for day, currency, rate in parse_eurofxref(payload.body):
            decimal_text(rate, f"{day} {currency}")
            out.append(
                self.observation(
                    "EUR", currency, rate, day, self.schedule.observation_instant(day), payload.fetched_at
                )
            )
        return out


class EcbDailyFeed(_EcbXmlFeed):
    adapter = "ecb-daily"
    description = "ECB euro reference rates, today's (eurofxref-daily.xml)"
    path = DAILY_PATH


class Ecb90dFeed(_EcbXmlFeed):
    adapter = "ecb-90d"
    description = "ECB euro reference rates, last 90 days (eurofxref-hist-90d.xml)"
    path = HIST_90D_PATH


class EcbSdmxFeed(HttpFeed):
    adapter = "ecb-sdmx"
    source = "ecb"
    description = "ECB euro reference rates through the SDMX API (EXR, CSV), for ranges"
    schedule = ECB_SCHEDULE
    supports_range = True

    def _path(self) -> str:
        currencies = self.option("currencies", [])
        key = "+".join(str(c) for c in currencies) if isinstance(currencies, list) else ""
        return f"/service/data/EXR/D.{key}.EUR.SP00.A"

    def latest_requests(self) -> list[Request]:
        return [Request(self._path(), (("lastNObservations", "1"), ("format", "csvdata")))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        params = (("startPeriod", start.isoformat()), ("endPeriod", end.isoformat()), ("format", "csvdata"))
        return [Request(self._path(), params, conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        return parse_sdmx_exr_csv(self, payload)


def parse_sdmx_exr_csv(feed: HttpFeed, payload: Payload) -> list[Observation]:
    """ECB SDMX CSV: OBS_VALUE units of CURRENCY per 10^UNIT_MULT units of CURRENCY_DENOM."""
    rows = csv_rows(decode(payload.body))
    rows = [r for r in rows if r]
    if not rows:
        raise FeedError("empty SDMX CSV")
    header = [h.strip() for h in rows[0]]
    needed = ("CURRENCY", "CURRENCY_DENOM", "TIME_PERIOD", "OBS_VALUE")
    missing = [n for n in needed if n not in header]
    if missing:
        raise FeedError(f"SDMX CSV without column(s) {', '.join(missing)}")
    rows_match_header(rows[1:], len(header), 2)
    col = {name: header.index(name) for name in header}
    out: list[Observation] = []
    for line, row in enumerate(rows[1:], start=2):
        value = row[col["OBS_VALUE"]].strip()
        if value in ("", "NaN"):
            continue
        try:
            day = dt.date.fromisoformat(row[col["TIME_PERIOD"]].strip())
        except ValueError:
            raise FeedError(f"line {line}: bad TIME_PERIOD {row[col['TIME_PERIOD']]!r}") from None
        mult = row[col["UNIT_MULT"]].strip() if "UNIT_MULT" in col else ""
        exponent = int(mult) if mult.lstrip("-").isdigit() else 0
        number = decimal_text(value, f"line {line}")
        text = value if exponent == 0 else scaled(number, 10**exponent)
        out.append(
            feed.observation(
                row[col["CURRENCY_DENOM"]].strip(),
                row[col["CURRENCY"]].strip(),
                text,
                day,
                feed.schedule.observation_instant(day),
                payload.fetched_at,
            )
        )
    return out
