"""kurs_gateway.anomalies: the JSON of an anomaly read from its `observation` is the JSON the
gateway gave before (MessageToDict of the previous contract's flat message), for a validator of
this release and of the previous one."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2
from kurs_gateway import views
from kurs_gateway.anomalies import anomaly_json, observation, page_json

OBSERVED = Timestamp(seconds=1_736_956_800)
DETECTED = Timestamp(seconds=1_736_957_130, nanos=250_000_000)


def _observation(**fields: Any) -> common_pb2.Observation:
    return common_pb2.Observation(
        **{
            "source": "ecb",
            "feed": "ecb-daily",
            "kind": common_pb2.OBSERVATION_KIND_REFERENCE,
            "base": "EUR",
            "quote": "JPY",
            "value": "16.25",
            "date": "2025-01-15",
            "observed_at": OBSERVED,
            **fields,
        }
    )


def _previous(obs: common_pb2.Observation, **fields: Any) -> validator_pb2.Anomaly:
    """An anomaly as a validator of the previous release sent it: the observation flat only."""
    flat: dict[str, Any] = {
        "source": obs.source,
        "feed": obs.feed,
        "kind": obs.kind,
        "base": obs.base,
        "quote": obs.quote,
        "value": obs.value,
        "date": obs.date,
    }
    if obs.HasField("observed_at"):
        flat["observed_at"] = obs.observed_at
    return validator_pb2.Anomaly(**flat, **fields)


def _current(obs: common_pb2.Observation, **fields: Any) -> validator_pb2.Anomaly:
    """As this release's validator sends it: `observation`, and the flat fields again."""
    message = _previous(obs, **fields)
    message.observation.CopyFrom(obs)
    return message


REJECTED = {
    "id": 7,
    "reason": "decimal_shift",
    "detail": "10x the last fixing",
    "currency": "JPY",
    "expected": "162.5",
    "detected_at": DETECTED,
}
CASES = {
    "rejected": (_observation(), REJECTED),
    "stale_source": (
        _observation(feed="", kind=common_pb2.OBSERVATION_KIND_LIVE, base="", quote="", value=""),
        {"id": 8, "reason": "stale_source", "detail": "silent", "detected_at": DETECTED},
    ),
    "no instant, no id": (_observation(observed_at=None), {**REJECTED, "id": 0}),
    "unspecified kind": (_observation(kind=common_pb2.OBSERVATION_KIND_UNSPECIFIED), REJECTED),
    "a kind this build lacks": (_observation(kind=9), REJECTED),
}


def _before(message: validator_pb2.Anomaly, defaults: bool) -> dict[str, Any]:
    """What the gateway answered before: MessageToDict of the message without `observation`."""
    previous = validator_pb2.Anomaly()
    previous.CopyFrom(message)
    previous.ClearField("observation")
    return MessageToDict(
        previous, preserving_proto_field_name=True, always_print_fields_with_no_presence=defaults
    )


@pytest.mark.parametrize("defaults", [True, False], ids=["rest", "alert"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("release", [_current, _previous], ids=["current", "previous"])
def test_the_json_is_what_the_gateway_gave_before(release: Any, case: str, defaults: bool) -> None:
    obs, fields = CASES[case]
    message = release(obs, **fields)

    body = anomaly_json(message, defaults=defaults)

    expected = _before(message, defaults)
    assert body == expected
    assert list(body) == list(expected)  # the same order: the answers' bytes are unchanged


def test_the_observation_is_read_before_the_flat_fields() -> None:
    message = _current(_observation(value="16.25"), **REJECTED)
    message.value = "stale copy"
    message.source = "other"

    body = anomaly_json(message)

    assert (body["value"], body["source"]) == ("16.25", "ecb")
    assert observation(message) == message.observation


def test_a_previous_release_anomaly_reads_as_its_flat_fields() -> None:
    message = _previous(_observation(), **REJECTED)

    assert not message.HasField("observation")
    assert observation(message) == _observation()
    assert observation(_previous(_observation(observed_at=None))).HasField("observed_at") is False


@pytest.mark.parametrize("token", ["", "cursor"])
@pytest.mark.parametrize("release", [_current, _previous], ids=["current", "previous"])
def test_a_page_is_the_same_bytes_as_before(release: Any, token: str) -> None:
    reply = validator_pb2.ListAnomaliesResponse(
        anomalies=[release(obs, **fields) for obs, fields in CASES.values()], next_page_token=token
    )
    previous = validator_pb2.ListAnomaliesResponse()
    previous.CopyFrom(reply)
    for a in previous.anomalies:
        a.ClearField("observation")
    before = MessageToDict(
        previous, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )

    assert views.dumps(page_json(reply)) == views.dumps(before)


def test_an_empty_page_is_the_same_bytes_as_before() -> None:
    reply = validator_pb2.ListAnomaliesResponse()
    before = MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)

    assert views.dumps(page_json(reply)) == views.dumps(before) == b'{"anomalies":[],"next_page_token":""}'
