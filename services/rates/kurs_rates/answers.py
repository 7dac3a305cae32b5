"""What RateQueries answers: the shapes the servicer turns into proto responses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kurs_common.rate import Rate


@dataclass(frozen=True, slots=True)
class RatesAnswer:
    base: str
    day: dt.date | None
    rates: tuple[Rate, ...]


@dataclass(frozen=True, slots=True)
class SeriesAnswer:
    base: str
    start: dt.date
    end: dt.date
    days: dict[dt.date, dict[str, str]]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SeriesJson:
    """SeriesAnswer with its days as one JSON object (GetTimeSeriesJsonResponse in rates.proto)."""

    base: str
    start: dt.date
    end: dt.date
    rates_json: bytes
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConvertAnswer:
    from_currency: str
    to_currency: str
    amount: str
    rate: str
    result: str
    day: dt.date
    sources: tuple[str, ...]
