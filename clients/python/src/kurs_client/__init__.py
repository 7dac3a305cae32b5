"""kurs_client: the Python SDK of Kurs for internal services.

`KursClient` (blocking) and `AsyncKursClient` (asyncio) share one interface: latest, historical,
timeseries, convert, currencies, publishers and stream_rates, over gRPC (default) or the REST
gateway, with per-region endpoint failover, a TTL cache, the ExchangeRate-API v6 fallback, stale
values as a last resort and USD triangulation. See clients/python/README.md.
"""

from __future__ import annotations

from kurs_client.aio import AsyncKursClient
from kurs_client.config import ClientConfig, Endpoint
from kurs_client.errors import (
    InvalidArgumentError,
    KursError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
    UnsupportedCurrencyError,
)
from kurs_client.models import (
    Conversion,
    Currency,
    Origin,
    Publisher,
    PublisherCurrency,
    Rate,
    RateEvent,
    Rates,
    TimeSeries,
)
from kurs_client.sync import KursClient
from kurs_client.version import PROTO_PACKAGE, __version__

__all__ = [
    "PROTO_PACKAGE",
    "AsyncKursClient",
    "ClientConfig",
    "Conversion",
    "Currency",
    "Endpoint",
    "InvalidArgumentError",
    "KursClient",
    "KursError",
    "NotFoundError",
    "NotSupportedError",
    "Origin",
    "Publisher",
    "PublisherCurrency",
    "Rate",
    "RateEvent",
    "Rates",
    "TimeSeries",
    "UnavailableError",
    "UnsupportedCurrencyError",
    "__version__",
]
