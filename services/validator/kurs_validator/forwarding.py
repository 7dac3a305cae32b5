"""What the validator forwards to the rates service: each publisher's figures as published (flagged
where judged) and the consensus, packed into IngestRates requests."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2
from kurs_common.observation import LIVE, REFERENCE, Observation
from kurs_common.rate import Rate, RateKind
from kurs_common.timeutil import to_timestamp
from kurs_validator.model import BatchOutcome

_RATE_KINDS = {REFERENCE: common_pb2.OBSERVATION_KIND_REFERENCE, LIVE: common_pb2.OBSERVATION_KIND_LIVE}


@functools.lru_cache(maxsize=1024)
def _stamp(value: dt.datetime) -> Timestamp | None:
    """One Timestamp per instant (a batch shares a few); only ever copied into messages, never mutated."""
    return to_timestamp(value)


@functools.lru_cache(maxsize=1024)
def _iso_day(value: dt.date) -> str:
    return value.isoformat()


def ingest_request(items: Sequence[Rate]) -> ingest_pb2.IngestRatesRequest:
    """The IngestRates request of a chunk of the outbox: each rate in its series (a publisher's
    own figure, a fixing's consensus in the blend, a live tick under its source).

    Each AcceptedRate is built in place (`rates.add`): building messages apart and handing the
    list to the request copies every one of them again (2.7x the time on a history batch).
    """
    request = ingest_pb2.IngestRatesRequest()
    add = request.rates.add
    kinds = _RATE_KINDS
    for item in items:
        add(
            source=item.source,
            kind=kinds[item.kind],
            base=item.base,
            currency=item.currency,
            value=item.value,
            date=_iso_day(item.day),
            observed_at=_stamp(item.observed_at),
            sources=item.sources,
            replay=item.replay,
            flag=item.flag,
        )
    return request


# Rejections that say an observation is not a usable figure at all (never stored). Any other
# rejection (an outlier, a jump, a peg break, ...) is a judgement: the publisher's figure is kept
# and served under its publisher, flagged with the reason, and only kept out of the blend.
NOT_A_FIGURE = frozenset(
    {
        "bad_date",
        "future_dated",
        "missing_kind",
        "missing_observed_at",
        "missing_source",
        "non_positive",
        "not_a_number",
        "retired_currency",
        "same_currency",
        "unknown_currency",
    }
)


def published_figures(observations: Sequence[Observation], outcome: BatchOutcome) -> list[Rate]:
    """Every reference figure of a batch as its publisher published it, flagged where judged."""
    judged = {r.index: r.reason for r in outcome.rejections}
    out: list[Rate] = []
    for i, obs in enumerate(observations):
        reason = judged.get(i, "")
        if obs.kind != REFERENCE or reason in NOT_A_FIGURE or obs.observed_at is None:
            continue
        out.append(
            Rate(
                obs.source,
                RateKind.REFERENCE,
                obs.quote,
                obs.value,
                dt.date.fromisoformat(obs.day),
                obs.observed_at,
                (obs.source,),
                obs.replay,
                obs.base,
                reason,
            )
        )
    return out
