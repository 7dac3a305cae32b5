"""Domain types of the validator (no I/O)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from kurs_common.observation import Observation
from kurs_common.rate import Rate


class Confidence(enum.StrEnum):
    HIGH = "high"  # >= 3 sources agree within half the tolerance
    MEDIUM = "medium"  # >= 2 sources agree within the tolerance
    LOW = "low"  # one source, backed by its own recent history or a peg
    UNVERIFIED = "unverified"  # one source and no second opinion


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int  # position in the submitted batch
    reason: str  # machine-readable ("non_positive", "outlier", ...)
    detail: str  # in words
    field: str = "value"  # the observation's field at fault


@dataclass(frozen=True, slots=True)
class Anomaly:
    reason: str
    detail: str
    # The figure judged, as published (its source, feed, kind, base, quote, value, day and
    # instant); for a source-level anomaly such as "stale_source", only the source, kind, and
    # the day and instant of its newest figure.
    observation: Observation
    currency: str  # the currency the figure speaks about (its non-pivot side); "" for a source
    expected: str
    detected_at: dt.datetime
    id: int = 0  # assigned by the store


@dataclass(frozen=True, slots=True)
class Contribution:
    source: str
    value: str  # per one EUR (storage pivot)
    comparison: str  # per one USD (comparison pivot; USD itself: USD per EUR); "" when unknown
    observed_at: dt.datetime
    weight: float = 0.0
    reason: str = ""  # why it was excluded; "" for a contributor


@dataclass(frozen=True, slots=True)
class QualityRecord:
    kind: str
    currency: str
    day: dt.date
    observed_at: dt.datetime
    value: str  # the published figure, per one EUR
    source: str  # whose figure it is
    contributors: tuple[Contribution, ...]
    excluded: tuple[Contribution, ...]
    spread: str
    consensus: str
    newest_observed_at: dt.datetime
    newest_input_age_seconds: float
    confidence: Confidence
    published_at: dt.datetime

    @property
    def slot(self) -> str:
        """The key of the published rate: the date of a fixing, the instant of a live tick."""
        return self.day.isoformat() if self.kind == "reference" else self.observed_at.isoformat()


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str
    kind: str
    last_observed_at: dt.datetime
    last_day: dt.date
    stale: bool
    window: dt.timedelta
    accepted: int
    rejected: int


@dataclass(slots=True)
class BatchOutcome:
    accepted: int = 0
    held: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    # Rates to forward to the rates service (consensus figures: the blend or a live tick)
    published: list[Rate] = field(default_factory=list)
    quality: list[QualityRecord] = field(default_factory=list)
