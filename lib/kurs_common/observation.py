"""The observation a collector feed produces and the validator checks, with its proto mapping."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kurs.validator.v1 import validator_pb2
from kurs_common.timeutil import from_timestamp, to_timestamp

REFERENCE = "reference"  # a daily fixing
LIVE = "live"  # a market or replay tick

_TO_PROTO = {REFERENCE: validator_pb2.OBSERVATION_KIND_REFERENCE, LIVE: validator_pb2.OBSERVATION_KIND_LIVE}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}


@dataclass(frozen=True, slots=True)
class Observation:
    """`value` units of `quote` per one `base`, exactly as the source published it."""

    source: str
    feed: str
    kind: str
    base: str
    quote: str
    value: str
    day: str  # YYYY-MM-DD business date
    observed_at: dt.datetime | None
    fetched_at: dt.datetime | None = None
    bid: str = ""
    ask: str = ""
    replay: bool = False

    def to_proto(self) -> validator_pb2.Observation:
        return validator_pb2.Observation(
            source=self.source,
            feed=self.feed,
            kind=_TO_PROTO.get(self.kind, validator_pb2.OBSERVATION_KIND_UNSPECIFIED),
            base=self.base,
            quote=self.quote,
            value=self.value,
            bid=self.bid,
            ask=self.ask,
            date=self.day,
            observed_at=to_timestamp(self.observed_at),
            fetched_at=to_timestamp(self.fetched_at),
            replay=self.replay,
        )

    @classmethod
    def from_proto(cls, obs: validator_pb2.Observation) -> Observation:
        return cls(
            source=obs.source,
            feed=obs.feed,
            kind=_FROM_PROTO.get(obs.kind, ""),
            base=obs.base,
            quote=obs.quote,
            value=obs.value,
            day=obs.date,
            observed_at=from_timestamp(obs.observed_at) if obs.HasField("observed_at") else None,
            fetched_at=from_timestamp(obs.fetched_at) if obs.HasField("fetched_at") else None,
            bid=obs.bid,
            ask=obs.ask,
            replay=obs.replay,
        )
