"""Strict date parsing and UTC time helpers."""

from __future__ import annotations

import datetime as dt
import re

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateFormatError(ValueError):
    """A string is not a real calendar date in YYYY-MM-DD form."""


def parse_date(text: str) -> dt.date:
    """Parse YYYY-MM-DD; reject other shapes and impossible dates (2025-02-30)."""
    if not isinstance(text, str) or not _DATE_RE.match(text):
        raise DateFormatError(f"{text!r} is not a date in YYYY-MM-DD form")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise DateFormatError(f"{text!r} is not a real calendar date") from exc


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today_utc() -> dt.date:
    return utcnow().date()
