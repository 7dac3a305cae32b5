"""The validator's anomalies as the gateway's JSON: one flat object per anomaly.

The validator sends each anomaly's observation as `observation` (kurs.common.v1.Observation); the
gateway's answers (`GET /anomalies`, the `anomaly` of an alert event) keep the flat shape they had
before it: id, reason, detail, source, feed, kind, base, quote, value, currency, date, observed_at,
expected, detected_at, with the names, order and formats protobuf's JSON mapping gives them.
"""

from __future__ import annotations

from typing import Any

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2


def observation(anomaly: validator_pb2.Anomaly) -> common_pb2.Observation:
    """The anomaly's observation; from the deprecated flat fields when a validator of the previous
    release sent no `observation`."""
    if anomaly.HasField("observation"):
        return anomaly.observation
    legacy = common_pb2.Observation(
        source=anomaly.source,
        feed=anomaly.feed,
        kind=anomaly.kind,
        base=anomaly.base,
        quote=anomaly.quote,
        value=anomaly.value,
        date=anomaly.date,
    )
    if anomaly.HasField("observed_at"):
        legacy.observed_at.CopyFrom(anomaly.observed_at)
    return legacy


def _kind(value: common_pb2.ObservationKind.ValueType) -> str | int:
    # MessageToDict's rendering: the value's name, or the number for a value this build lacks.
    try:
        return common_pb2.ObservationKind.Name(value)
    except ValueError:
        return int(value)


def anomaly_json(anomaly: validator_pb2.Anomaly, *, defaults: bool = True) -> dict[str, Any]:
    """The flat JSON object of one anomaly, as MessageToDict(preserving_proto_field_name=True)
    rendered the previous contract's message: `id` a decimal string (uint64), `kind` the enum
    value's name, times RFC 3339 and left out when unset, in MessageToDict's order. With
    `defaults` (the REST answer) empty fields are kept, as with always_print_fields_with_no_presence;
    without (an alert event's `anomaly`), they are left out."""
    obs = observation(anomaly)
    body: dict[str, Any] = {
        "id": str(anomaly.id),
        "reason": anomaly.reason,
        "detail": anomaly.detail,
        "source": obs.source,
        "feed": obs.feed,
        "kind": _kind(obs.kind),
        "base": obs.base,
        "quote": obs.quote,
        "value": obs.value,
        "currency": anomaly.currency,
        "date": obs.date,
        "observed_at": obs.observed_at.ToJsonString() if obs.HasField("observed_at") else None,
        "expected": anomaly.expected,
        "detected_at": anomaly.detected_at.ToJsonString() if anomaly.HasField("detected_at") else None,
    }
    # MessageToDict writes the fields that differ from their type's default ("", 0, the enum's 0)
    # first, in field-number order, and then, with always_print_fields_with_no_presence, the others.
    unset = {"id"} if anomaly.id == 0 else set()
    if obs.kind == common_pb2.OBSERVATION_KIND_UNSPECIFIED:
        unset.add("kind")
    present = {k: v for k, v in body.items() if v is not None and v != "" and k not in unset}
    if not defaults:
        return present
    return present | {k: v for k, v in body.items() if v is not None and k not in present}


def page_json(reply: validator_pb2.ListAnomaliesResponse) -> dict[str, Any]:
    """The JSON of a ListAnomalies page (`GET /anomalies`): its anomalies and `next_page_token`."""
    return {"anomalies": [anomaly_json(a) for a in reply.anomalies], "next_page_token": reply.next_page_token}
