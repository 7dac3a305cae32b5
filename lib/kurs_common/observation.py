"""The observation a collector feed produces and the validator checks, with its proto mapping."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from sys import intern

from kurs.common.v1 import common_pb2
from kurs_common.timeutil import from_timestamp, to_timestamp

REFERENCE = "reference"  # a daily fixing
LIVE = "live"  # a market or replay tick

_TO_PROTO = {REFERENCE: common_pb2.OBSERVATION_KIND_REFERENCE, LIVE: common_pb2.OBSERVATION_KIND_LIVE}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 1 µs per object on the hot path
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

    def to_proto(self) -> common_pb2.Observation:
        return common_pb2.Observation(
            source=self.source,
            feed=self.feed,
            kind=_TO_PROTO.get(self.kind, common_pb2.OBSERVATION_KIND_UNSPECIFIED),
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
    def from_proto(cls, obs: common_pb2.Observation) -> Observation:
        # Identifiers repeat across a batch; interned, they hash once and compare by identity in
        # the validator's many dict lookups.
        return cls(
            source=intern(obs.source),
            feed=intern(obs.feed),
            kind=_FROM_PROTO.get(obs.kind, ""),
            base=intern(obs.base),
            quote=intern(obs.quote),
            value=obs.value,
            day=intern(obs.date),
            observed_at=from_timestamp(obs.observed_at) if obs.HasField("observed_at") else None,
            fetched_at=from_timestamp(obs.fetched_at) if obs.HasField("fetched_at") else None,
            bid=obs.bid,
            ask=obs.ask,
            replay=obs.replay,
        )
