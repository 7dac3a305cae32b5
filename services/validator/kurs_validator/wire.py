"""The ValidatorService's messages: observations read from proto, anomalies, quality records and
source states written to proto, and the proto kind numbers mapped to our kind names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.timeutil import to_timestamp
from kurs_validator.model import Anomaly, Confidence, Contribution, QualityRecord, SourceStatus

_OBS_KINDS = {REFERENCE: common_pb2.OBSERVATION_KIND_REFERENCE, LIVE: common_pb2.OBSERVATION_KIND_LIVE}
KIND_NAMES: dict[int, str] = {int(v): k for k, v in _OBS_KINDS.items()}
_CONFIDENCE = {
    Confidence.HIGH: validator_pb2.CONFIDENCE_HIGH,
    Confidence.MEDIUM: validator_pb2.CONFIDENCE_MEDIUM,
    Confidence.LOW: validator_pb2.CONFIDENCE_LOW,
    Confidence.UNVERIFIED: validator_pb2.CONFIDENCE_UNVERIFIED,
}


def observations_from_proto(items: Sequence[common_pb2.Observation]) -> list[Observation]:
    """Observation.from_proto for a batch (timestamps shared by a batch are converted once)."""
    return [Observation.from_proto(o) for o in items]


def anomaly_to_proto(a: Anomaly) -> validator_pb2.Anomaly:
    """The anomaly with its observation as published (`observation`), and that observation's fields
    again in the deprecated flat fields for clients of the previous release."""
    obs = a.observation
    # What the store keeps of it, so a streamed anomaly reads as the same one listed later; the
    # deprecated flat fields carry the same names.
    stored: dict[str, Any] = {
        "source": obs.source,
        "feed": obs.feed,
        "kind": _OBS_KINDS.get(obs.kind, common_pb2.OBSERVATION_KIND_UNSPECIFIED),
        "base": obs.base,
        "quote": obs.quote,
        "value": obs.value,
        "date": obs.day,
        "observed_at": to_timestamp(obs.observed_at),
    }
    return validator_pb2.Anomaly(
        id=a.id,
        reason=a.reason,
        detail=a.detail,
        currency=a.currency,
        expected=a.expected,
        detected_at=to_timestamp(a.detected_at),
        observation=common_pb2.Observation(**stored),
        **stored,
    )


def _contribution_to_proto(c: Contribution) -> validator_pb2.Contribution:
    return validator_pb2.Contribution(
        source=c.source,
        value=c.value,
        comparison_value=c.comparison,
        observed_at=to_timestamp(c.observed_at),
        weight=c.weight,
        reason=c.reason,
    )


def quality_to_proto(q: QualityRecord) -> validator_pb2.QualityRecord:
    return validator_pb2.QualityRecord(
        kind=_OBS_KINDS[q.kind],
        currency=q.currency,
        date=q.day.isoformat(),
        observed_at=to_timestamp(q.observed_at),
        value=q.value,
        source=q.source,
        contributors=[_contribution_to_proto(c) for c in q.contributors],
        excluded=[_contribution_to_proto(c) for c in q.excluded],
        spread=q.spread,
        consensus=q.consensus,
        newest_observed_at=to_timestamp(q.newest_observed_at),
        newest_input_age_seconds=q.newest_input_age_seconds,
        confidence=_CONFIDENCE[q.confidence],
        published_at=to_timestamp(q.published_at),
    )


def source_to_proto(s: SourceStatus) -> validator_pb2.SourceState:
    return validator_pb2.SourceState(
        source=s.source,
        kind=_OBS_KINDS[s.kind],
        last_observed_at=to_timestamp(s.last_observed_at),
        last_date=s.last_day.isoformat(),
        freshness=validator_pb2.SOURCE_FRESHNESS_STALE if s.stale else validator_pb2.SOURCE_FRESHNESS_FRESH,
        window_seconds=s.window.total_seconds(),
        accepted=s.accepted,
        rejected=s.rejected,
    )
