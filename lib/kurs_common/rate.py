"""One shape for "a rate with its provenance", shared by every service.

A `Rate` is `value` units of `currency` per one `base`, an exact decimal string, with where it
came from. The same type travels the whole way:

* the validator's publications (a consensus pick or a publisher's own figure, before it is
  forwarded over `RatesIngestService.IngestRates`),
* the rates service's stored rows, latest rates and Redis fan-out,
* the answers rates gives (re-based against the caller's base) and the gateway's snapshot
  entries built from them.

Fields:

* `source`: the series the figure belongs to: `kurs_common.series.BLEND` for the blended
  reference series, a publisher's id for its own figures, a live feed's id for ticks; "" where
  nobody named it (the gateway's entries, decoded from `rates.v1.Rate`, which does not carry it).
* `kind`: a reference fixing (one per business day) or a live tick.
* `day`: the business date of the figure (for a cross rate: the newer of its two figures').
* `observed_at`: when the figure was observed (UTC). A figure derived at read time that has no
  single instant (a publisher's answer, the pivot against itself) carries `UNOBSERVED`, the
  Unix epoch: the wire leaves `observed_at` unset for it, and an unset protobuf Timestamp
  decodes to that same instant, so "no instant" means one thing on both sides of a call.
* `sources`: the contributors (for the blend, every publisher whose figure entered the
  consensus; for a publisher's figure, the publisher itself).
* `replay`: a replayed (not live) tick, or a figure crossed with one.
* `flag`: why the validator kept a publisher's figure out of the blend ("" if it did not).

Frozen and slotted: rates are created per figure on every hot path (validator throughput,
ingest, the gateway's snapshot), so the type adds no per-instance dict.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from kurs_common.series import PIVOT

__all__ = ["UNOBSERVED", "Rate", "RateKind", "observed", "rate_kind"]


UNOBSERVED = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class RateKind(enum.StrEnum):
    REFERENCE = "reference"  # one fixing per business date
    LIVE = "live"  # market or replay ticks


_KINDS = {k.value: k for k in RateKind}


def rate_kind(text: str) -> RateKind:
    """`RateKind` of "reference" / "live" (a dict lookup, cheaper than `RateKind(text)`)."""
    kind = _KINDS.get(text)
    if kind is None:
        raise ValueError(f"unknown rate kind {text!r}")
    return kind


@dataclass(frozen=True, slots=True)
class Rate:
    """`value` units of `currency` per one `base`, exactly as received, with its provenance."""

    source: str
    kind: RateKind
    currency: str
    value: str  # exact decimal string
    day: dt.date
    observed_at: dt.datetime  # UTC; UNOBSERVED for a figure derived at read time
    sources: tuple[str, ...] = ()
    replay: bool = False
    base: str = PIVOT
    flag: str = ""


def observed(at: dt.datetime) -> dt.datetime | None:
    """`at`, or None for `UNOBSERVED` (what goes on the wire and into a body's timestamp)."""
    return None if at == UNOBSERVED else at
