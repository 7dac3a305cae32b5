"""ECB euro foreign exchange reference rates: the daily XML, the 90-day XML and the SDMX API.

* ecb-daily: /stats/eurofxref/eurofxref-daily.xml - today's rates (gesmes Envelope, one
  `<Cube time=...>` of `<Cube currency=... rate=...>`); after downtime it catches up from
  the 90-day file.
* ecb-90d: /stats/eurofxref/eurofxref-hist-90d.xml - the same shape, one Cube per day.
* ecb-sdmx: /service/data/EXR/D.<currencies>.EUR.SP00.A?format=csvdata - the SDMX 2.1 REST
  API for ranges (startPeriod/endPeriod, one request for any range) and backfills. Its CSV
  has columns KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,...
  ,UNIT_MULT; other SDMX CSV shapes (without KEY or CURRENCY_DENOM, reordered or extra
  columns, SDMX-CSV's DATAFLOW/STRUCTURE columns) are read too: a dimension missing from a
  row is taken from its KEY, else from the series key the request asked for.

Values: units of currency per one EUR, for the TARGET day, published around 16:00 CET.
Tolerant, strict: a figure that cannot be read (bad date, bad number, a cube without its
currency) is reported with the reason and skipped; a body that is not the format at all
(another XML document, a CSV without TIME_PERIOD/OBS_VALUE) fails the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import unquote, urlsplit
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
SDMX_PATH = "/service/data/EXR/"
# Order of the EXR key: FREQ.CURRENCY.CURRENCY_DENOM.EXR_TYPE.EXR_SUFFIX (KEY prefixes "EXR.").
EXR_DIMENSIONS = ("FREQ", "CURRENCY", "CURRENCY_DENOM", "EXR_TYPE", "EXR_SUFFIX")
NO_FIGURE = ("", "NaN", "NA")


def _ignore(problem: str) -> None:
    """Default sink of parse_eurofxref's per-figure problems (callers that only want figures)."""


def parse_eurofxref(body: bytes, report: Callable[[str], None] = _ignore) -> list[tuple[dt.date, str, str]]:
    """(day, currency, rate) triples from eurofxref-daily.xml / eurofxref-hist-90d.xml.

    A day Cube without a readable date, or a rate Cube without its currency or rate, is
    reported and skipped; a document that is not a eurofxref Envelope raises FeedError."""
    root = parse_xml(body, "eurofxref XML")
    if root.tag != f"{GESMES}Envelope":
        raise FeedError(f"not a eurofxref document (root element {root.tag!r})")
    outer = root.find(f"{EUROFXREF}Cube")
    if outer is None:
        raise FeedError("eurofxref document without a Cube")
    out: list[tuple[dt.date, str, str]] = []
    for day_cube in outer.findall(f"{EUROFXREF}Cube"):
        text = (day_cube.get("time") or "").strip()
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            report(f"a day Cube with time {text[:40]!r} is not dated YYYY-MM-DD; its rates are skipped")
            continue
        for cube in day_cube.findall(f"{EUROFXREF}Cube"):
            currency, rate = (cube.get("currency") or "").strip(), (cube.get("rate") or "").strip()
            if not currency or not rate:
                report(f"{day}: a rate Cube without its currency or rate ({currency or rate!r}); skipped")
                continue
            out.append((day, currency, rate))
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
        for day, currency, rate in parse_eurofxref(payload.body, self.report):
            try:
                decimal_text(rate, f"EUR/{currency} {day}")
            except FeedError as exc:
                self.report(f"{exc}; figure skipped")
                continue
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
        return f"{SDMX_PATH}D.{key}.EUR.SP00.A"

    def latest_requests(self) -> list[Request]:
        return [Request(self._path(), (("lastNObservations", "1"), ("format", "csvdata")))]

    def range_requests(self, start: dt.date, end: dt.date) -> list[Request]:
        # One request for the whole range and every currency of the key.
        params = (("startPeriod", start.isoformat()), ("endPeriod", end.isoformat()), ("format", "csvdata"))
        return [Request(self._path(), params, conditional=False)]

    def parse(self, payload: Payload) -> list[Observation]:
        return parse_sdmx_exr_csv(self, payload)


def _requested_key(url: str) -> dict[str, str]:
    """Dimensions the request's series key fixes to one value (D.USD.EUR.SP00.A -> all five;
    D.USD+JPY.EUR.SP00.A -> all but CURRENCY)."""
    path = unquote(urlsplit(url).path)
    if SDMX_PATH not in path:
        return {}
    parts = path.rsplit("/", 1)[-1].split(".")
    if len(parts) != len(EXR_DIMENSIONS):
        return {}
    return {name: part for name, part in zip(EXR_DIMENSIONS, parts, strict=True) if part and "+" not in part}


def _row_key(row: list[str], col: dict[str, int]) -> dict[str, str]:
    """Dimensions a row's KEY column spells (EXR.D.USD.EUR.SP00.A)."""
    if "KEY" not in col:
        return {}
    parts = row[col["KEY"]].strip().split(".")
    if len(parts) != len(EXR_DIMENSIONS) + 1:
        return {}
    return dict(zip(EXR_DIMENSIONS, parts[1:], strict=True))


def parse_sdmx_exr_csv(feed: HttpFeed, payload: Payload) -> list[Observation]:
    """ECB SDMX CSV: OBS_VALUE units of CURRENCY per 10^UNIT_MULT units of CURRENCY_DENOM."""
    rows = [r for r in csv_rows(decode(payload.body)) if r]
    if not rows:
        raise FeedError("empty SDMX CSV")
    header = [h.strip() for h in rows[0]]
    missing = [n for n in ("TIME_PERIOD", "OBS_VALUE") if n not in header]
    if missing:
        raise FeedError(f"not an SDMX data CSV: no column(s) {', '.join(missing)}")
    rows_match_header(rows[1:], len(header), 2)
    col = {name: header.index(name) for name in header}
    requested = _requested_key(payload.url)
    out: list[Observation] = []
    for line, row in enumerate(rows[1:], start=2):
        value = row[col["OBS_VALUE"]].strip()
        if value in NO_FIGURE:
            continue
        from_key = _row_key(row, col)
        dims = {
            name: (row[col[name]].strip() if name in col else "")
            or from_key.get(name)
            or requested.get(name, "")
            for name in EXR_DIMENSIONS
        }
        where = f"line {line} ({dims['CURRENCY'] or '?'}/{dims['CURRENCY_DENOM'] or '?'})"
        if not dims["CURRENCY"] or not dims["CURRENCY_DENOM"]:
            feed.report(f"{where}: no CURRENCY or CURRENCY_DENOM in the row, its KEY or the request; skipped")
            continue
        if dims["EXR_TYPE"] not in ("", "SP00") or dims["FREQ"] not in ("", "D"):
            feed.report(
                f"{where}: series {dims['FREQ']}/{dims['EXR_TYPE']} is not a daily spot rate; skipped"
            )
            continue
        text_day = row[col["TIME_PERIOD"]].strip()
        try:
            day = dt.date.fromisoformat(text_day)
        except ValueError:
            feed.report(f"{where}: TIME_PERIOD {text_day[:20]!r} is not a day; skipped")
            continue
        mult = row[col["UNIT_MULT"]].strip() if "UNIT_MULT" in col else ""
        try:
            exponent = int(mult) if mult else 0
            number = decimal_text(value, f"{where} {day}")
            text = value if exponent == 0 else scaled(number, 10**exponent)
        except (ValueError, FeedError) as exc:
            feed.report(f"{where} {day}: unreadable figure {value[:20]!r} x 10^{mult[:5]!r} ({exc}); skipped")
            continue
        out.append(
            feed.observation(
                dims["CURRENCY_DENOM"],
                dims["CURRENCY"],
                text,
                day,
                feed.schedule.observation_instant(day),
                payload.fetched_at,
            )
        )
    return out
