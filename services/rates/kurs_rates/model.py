"""Domain types of the rates service (no I/O)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from kurs_common.errors import Unavailable

PIVOT = "EUR"
"""Every stored rate is quoted as units of currency per one PIVOT (the ECB's base)."""


class RateKind(enum.StrEnum):
    REFERENCE = "reference"  # one fixing per business date
    LIVE = "live"  # market or replay ticks


@dataclass(frozen=True, slots=True)
class StoredRate:
    source: str
    kind: RateKind
    currency: str
    value: str  # exact decimal string, units of currency per one PIVOT
    day: dt.date
    observed_at: dt.datetime  # UTC
    sources: tuple[str, ...] = ()
    replay: bool = False


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # Rows that were inserted or whose value changed, in input order.
    changed: tuple[StoredRate, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class CurrencyRange:
    code: str
    first_day: dt.date
    last_day: dt.date


class StoreUnavailable(Unavailable):
    """The backing store cannot be reached or timed out."""
