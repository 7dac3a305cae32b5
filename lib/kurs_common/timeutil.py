"""Strict date parsing and UTC time helpers."""

from __future__ import annotations

import datetime as dt
import functools
import re

from google.protobuf.timestamp_pb2 import Timestamp

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


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=4096)
def _seconds_nanos(value: dt.datetime) -> tuple[int, int]:
    # A batch shares a handful of instants (one per business day or poll), so this is cached.
    delta = value - _EPOCH
    return delta.days * 86_400 + delta.seconds, delta.microseconds * 1_000


@functools.lru_cache(maxsize=4096)
def _from_seconds(seconds: int, nanos: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1_000)


def to_timestamp(value: dt.datetime | None) -> Timestamp | None:
    """An aware datetime as a protobuf Timestamp (None stays None: the field stays unset)."""
    if value is None:
        return None
    seconds, nanos = _seconds_nanos(value)
    return Timestamp(seconds=seconds, nanos=nanos)


def from_timestamp(ts: Timestamp) -> dt.datetime:
    """A protobuf Timestamp as an aware UTC datetime (microsecond precision)."""
    return _from_seconds(ts.seconds, ts.nanos)
