"""How anomalies and quality records map to the validator store's SQLite rows (kurs_validator.store).

Figures stay the exact decimal strings they were; times are ISO 8601 text. A quality record with
one contributor that is the record itself keeps it in two columns (`weight`, no `detail`); any
other keeps its contributors and exclusions as one JSON document in `detail`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from kurs_common.observation import Observation
from kurs_validator.model import Anomaly, Confidence, Contribution, QualityRecord

QUALITY_COLUMNS = (
    "kind, currency, slot, observed_at, value, source, confidence, spread, consensus, newest_observed_at, "
    "newest_age, published_at, weight, detail"
)
ANOMALY_COLUMNS = (
    "id, reason, detail, source, feed, kind, base, quote, value, currency, day, observed_at, expected, "
    "detected_at"
)


def anomaly_row(a: Anomaly) -> tuple[Any, ...]:
    """The values of an INSERT into `anomalies`, in ANOMALY_COLUMNS order without `id`."""
    obs = a.observation
    published = (obs.source, obs.feed, obs.kind, obs.base, obs.quote, obs.value)
    observed = obs.observed_at.isoformat() if obs.observed_at else ""
    detected = a.detected_at.isoformat()
    return (a.reason, a.detail, *published, a.currency, obs.day, observed, a.expected, detected)


def anomaly_from_row(row: tuple[Any, ...]) -> Anomaly:
    """An Anomaly from a row read in ANOMALY_COLUMNS order."""
    key, reason, detail = row[:3]
    source, feed, kind, base, quote, value, currency, day, observed, expected, detected = row[3:]
    at = dt.datetime.fromisoformat(observed) if observed else None
    return Anomaly(
        reason=reason,
        detail=detail,
        observation=Observation(source, feed, kind, base, quote, value, day, at),
        currency=currency,
        expected=expected,
        detected_at=dt.datetime.fromisoformat(detected),
        id=int(key),
    )


def _contribution_json(c: Contribution) -> list[Any]:
    return [c.source, c.value, c.comparison, c.observed_at.isoformat(), c.weight, c.reason]


def _contribution(d: list[Any]) -> Contribution:
    return Contribution(d[0], d[1], d[2], dt.datetime.fromisoformat(d[3]), float(d[4]), d[5])


def _iso(value: dt.datetime, stamps: dict[dt.datetime, str]) -> str:
    text = stamps.get(value)
    if text is None:
        text = stamps[value] = value.isoformat()
    return text


def quality_row(q: QualityRecord, stamps: dict[dt.datetime, str]) -> tuple[Any, ...]:
    only = q.contributors[0] if len(q.contributors) == 1 and not q.excluded else None
    simple = (
        only is not None
        and only.source == q.source
        and only.value == q.value
        and only.comparison == q.consensus
        and only.observed_at == q.observed_at
    )
    observed = _iso(q.observed_at, stamps)
    return (
        q.kind,
        q.currency,
        q.day.isoformat() if q.kind == "reference" else observed,
        observed,
        q.value,
        q.source,
        q.confidence.value,
        q.spread,
        q.consensus,
        _iso(q.newest_observed_at, stamps),
        q.newest_input_age_seconds,
        _iso(q.published_at, stamps),
        only.weight if simple and only is not None else None,
        None
        if simple
        else orjson.dumps(
            [[_contribution_json(c) for c in q.contributors], [_contribution_json(c) for c in q.excluded]]
        ),
    )


def quality_from_row(row: tuple[Any, ...]) -> QualityRecord:
    (kind, currency, slot, observed, value, source, confidence, spread, consensus, newest, age, published) = (
        row[:12]
    )
    weight, detail = row[12], row[13]
    observed_at = dt.datetime.fromisoformat(observed)
    if detail is None:
        contributors: tuple[Contribution, ...] = (
            Contribution(source, value, consensus, observed_at, float(weight or 0.0), ""),
        )
        excluded: tuple[Contribution, ...] = ()
    else:
        lists = orjson.loads(detail)
        contributors = tuple(_contribution(c) for c in lists[0])
        excluded = tuple(_contribution(c) for c in lists[1])
    return QualityRecord(
        kind=kind,
        currency=currency,
        day=dt.date.fromisoformat(slot) if kind == "reference" else observed_at.date(),
        observed_at=observed_at,
        value=value,
        source=source,
        contributors=contributors,
        excluded=excluded,
        spread=spread,
        consensus=consensus,
        newest_observed_at=dt.datetime.fromisoformat(newest),
        newest_input_age_seconds=float(age),
        confidence=Confidence(confidence),
        published_at=dt.datetime.fromisoformat(published),
    )
