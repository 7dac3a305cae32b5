"""wire.anomaly_to_proto: the observation in `observation` and, for clients of the previous
release, again in the deprecated flat fields."""

from __future__ import annotations

import datetime as dt

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_validator.model import Anomaly
from kurs_validator.wire import anomaly_to_proto

AT = dt.datetime(2025, 1, 15, 16, 0, tzinfo=dt.UTC)
DETECTED = dt.datetime(2025, 1, 15, 16, 5, 30, 250_000, tzinfo=dt.UTC)


def _flat(a: validator_pb2.Anomaly) -> common_pb2.Observation:
    """The deprecated flat fields as an Observation."""
    out = common_pb2.Observation(
        source=a.source, feed=a.feed, kind=a.kind, base=a.base, quote=a.quote, value=a.value, date=a.date
    )
    if a.HasField("observed_at"):
        out.observed_at.CopyFrom(a.observed_at)
    return out


def test_a_rejected_observation_is_sent_whole_and_flat() -> None:
    obs = Observation(
        "ecb", "ecb-daily", REFERENCE, "EUR", "JPY", "16.25", "2025-01-15", AT,
        fetched_at=AT + dt.timedelta(minutes=1), bid="16.2", ask="16.3", replay=True,
    )  # fmt: skip
    a = Anomaly("decimal_shift", "10x the last fixing", obs, "JPY", "162.5", DETECTED, id=7)

    message = anomaly_to_proto(a)

    assert message.HasField("observation")
    assert message.observation == common_pb2.Observation(
        source="ecb",
        feed="ecb-daily",
        kind=common_pb2.OBSERVATION_KIND_REFERENCE,
        base="EUR",
        quote="JPY",
        value="16.25",
        date="2025-01-15",
        observed_at=message.observed_at,
    )
    assert message.observation.observed_at.ToDatetime(dt.UTC) == AT
    # What the store does not keep is not sent, so a streamed anomaly equals the one listed later.
    assert not message.observation.HasField("fetched_at")
    assert (message.observation.bid, message.observation.ask, message.observation.replay) == ("", "", False)
    assert _flat(message) == message.observation
    assert (message.id, message.reason, message.currency, message.expected) == (
        7,
        "decimal_shift",
        "JPY",
        "162.5",
    )
    assert message.detected_at.ToDatetime(dt.UTC) == DETECTED


def test_a_stale_source_carries_its_source_kind_and_newest_figure() -> None:
    obs = Observation("market", "", LIVE, "", "", "", "2025-01-15", AT)
    message = anomaly_to_proto(Anomaly("stale_source", "silent", obs, "", "", DETECTED, id=8))

    assert message.observation == _flat(message)
    assert (message.observation.source, message.observation.kind, message.observation.date) == (
        "market",
        common_pb2.OBSERVATION_KIND_LIVE,
        "2025-01-15",
    )
    assert message.observation.observed_at.ToDatetime(dt.UTC) == AT
    assert (message.observation.base, message.observation.quote, message.observation.value) == ("", "", "")


def test_an_observation_without_an_instant_leaves_it_unset() -> None:
    obs = Observation("ecb", "ecb-daily", REFERENCE, "EUR", "USD", "-1", "2025-01-15", None)
    message = anomaly_to_proto(Anomaly("non_positive", "not above zero", obs, "USD", "", DETECTED))

    assert not message.observation.HasField("observed_at")
    assert not message.HasField("observed_at")
