"""The interface every transport offers (gRPC, REST), and what the two have in common."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Protocol

from kurs_client.config import Endpoint
from kurs_client.errors import InvalidArgumentError, NotFoundError, UnsupportedCurrencyError
from kurs_client.models import Conversion, Listing, Rates, StreamMessage, TimeSeries
from kurs_client.pool import EndpointPool


class Transport(Protocol):
    """One way to reach Kurs. Every call takes a deadline (seconds) for the whole call."""

    pool: EndpointPool

    async def latest(self, base: str, symbols: Sequence[str], source: str, timeout: float) -> Rates: ...

    async def historical(
        self, date: dt.date, base: str, symbols: Sequence[str], source: str, timeout: float
    ) -> Rates: ...

    async def timeseries(
        self, start: dt.date, end: dt.date, base: str, symbols: Sequence[str], source: str, timeout: float
    ) -> TimeSeries: ...

    async def convert(
        self, from_: str, to: str, amount: Decimal, date: dt.date | None, source: str, timeout: float
    ) -> Conversion: ...

    async def currencies(self, timeout: float) -> Listing: ...

    async def publishers(self, timeout: float) -> Listing: ...

    def stream(
        self, endpoint: Endpoint, base: str, symbols: Sequence[str], since: int, deadline: float
    ) -> AsyncIterator[StreamMessage]:
        """Messages of one stream call on one endpoint. Raises TransientError when the stream
        breaks (the caller resumes elsewhere), typed errors for a bad request."""
        ...

    async def close(self) -> None: ...


def request_error(field_and_reason: str, *, not_found: bool = False) -> InvalidArgumentError | NotFoundError:
    """The typed error of a `"<field>: <reason>"` detail (Kurs's gRPC details and problem titles)."""
    field, sep, reason = field_and_reason.partition(": ")
    if not sep:
        field, reason = "request", field_and_reason
    if not_found:
        return NotFoundError(field, reason)
    if "not served" in reason:
        return UnsupportedCurrencyError(field, reason)
    return InvalidArgumentError(field, reason)
