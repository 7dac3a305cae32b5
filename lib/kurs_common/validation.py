"""Request parameter rules shared by the rates service and the gateway.

Limits (documented in the README):
* symbols: at most MAX_SYMBOLS codes per request, each an ISO 4217 code (three ASCII letters) or
  a crypto ticker of kurs_common.currencies.CRYPTO (USDT, USDC: four), case-insensitive;
* time series: at most MAX_RANGE_DAYS days from start_date to end_date inclusive;
* dates: YYYY-MM-DD, real calendar dates, not after today (UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from kurs_common.currencies import CRYPTO, is_iso_code
from kurs_common.errors import InvalidArgument
from kurs_common.timeutil import DateFormatError, parse_date, today_utc

MAX_SYMBOLS = 50
MAX_RANGE_DAYS = 366


def currency(field: str, text: str, served: Collection[str] | None = None) -> str:
    """An ISO 4217 code (three letters) or a crypto ticker the market sources quote (USDT, ...)."""
    code = text.strip().upper() if isinstance(text, str) else ""
    if not is_iso_code(code) and code not in CRYPTO:
        raise InvalidArgument(field, f"{text!r} is not a three-letter ISO 4217 currency code")
    if served is not None and code not in served:
        raise InvalidArgument(field, f"currency {code} is not served (see /currencies)")
    return code


def symbols(field: str, values: Iterable[str], served: Collection[str] | None = None) -> list[str] | None:
    """Comma lists and repeated values, de-duplicated in order; None when nothing was asked."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                raise InvalidArgument(field, "empty currency code in list")
            code = currency(field, part, served)
            if code not in out:
                out.append(code)
    if len(out) > MAX_SYMBOLS:
        raise InvalidArgument(field, f"at most {MAX_SYMBOLS} currencies per request")
    return out or None


def date(field: str, text: str, *, allow_future: bool = False) -> dt.date:
    try:
        day = parse_date(text)
    except DateFormatError as exc:
        raise InvalidArgument(field, str(exc)) from exc
    if not allow_future and day > today_utc():
        raise InvalidArgument(field, f"{day.isoformat()} is in the future")
    return day


def date_range(start_field: str, start: str, end_field: str, end: str) -> tuple[dt.date, dt.date]:
    first = date(start_field, start)
    last = date(end_field, end)
    if first > last:
        raise InvalidArgument(start_field, f"{start_field} {first} is after {end_field} {last}")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidArgument(end_field, f"the range may span at most {MAX_RANGE_DAYS} days")
    return first, last
