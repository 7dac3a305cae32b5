"""The contract of a feed: one source adapter that yields batches of observations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from kurs_common.observation import Observation


class FeedError(Exception):
    """A feed could not produce observations (unreachable, malformed payload, ...)."""


class Feed(Protocol):
    id: str  # feed id, unique in the collector ("ecb-history")
    source: str  # publisher id carried by its observations ("ecb")
    description: str
    # "once": runs at start and on CollectNow; "stream": runs continuously until stopped.
    mode: str

    def collect(self) -> AsyncIterator[Sequence[Observation]]:
        """Yield batches; raise FeedError on a bad or unreachable source."""
        ...
