"""gRPC transport: one channel per endpoint, retries in the service config, a deadline on every call.

Retries on one endpoint are gRPC's (the `retryPolicy` of SERVICE_CONFIG: UNAVAILABLE only, with
exponential backoff; a stream is retried only before its first message). Moving to another
endpoint is the pool's job (kurs_client.pool). Health is grpc.health.v1 Check of
"kurs.rates.v1.RatesService" (the rates service keeps it SERVING while it can answer).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kurs_client import models
from kurs_client._proto import rates_pb2, rates_pb2_grpc
from kurs_client.config import ClientConfig, Endpoint
from kurs_client.pool import EndpointPool, StreamRenewal, TransientError
from kurs_client.transport import request_error
from kurs_client.version import PROTO_PACKAGE

SERVICE = f"{PROTO_PACKAGE}.RatesService"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
# Statuses after which another endpoint may succeed (reads are idempotent).
TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,  # a server going away cancels its calls
}


def service_config(config: ClientConfig) -> str:
    """The channel's service config: the retry policy of every RatesService method.

    Deadlines are not put here: every call passes its own (`timeout=`), which gRPC turns into an
    absolute deadline sent to the server. (With grpcio 1.85 under asyncio, a service-config
    `timeout` of a few seconds expired calls that took milliseconds, so it is not used.)
    """
    retry = {
        "maxAttempts": max(2, config.retry_attempts),
        "initialBackoff": "0.05s",
        "maxBackoff": "0.5s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps({"methodConfig": [{"name": [{"service": SERVICE}], "retryPolicy": retry}]})


@functools.lru_cache(maxsize=4096)
def _moment(seconds: int, nanos: int) -> dt.datetime:
    """A Timestamp as an aware datetime (Timestamp.ToDatetime costs ~13 us; the rates of one
    answer mostly share a few publication times, so this is usually a cache hit)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(microsecond=nanos // 1000)


@functools.lru_cache(maxsize=4096)
def _day(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _rate(r: rates_pb2.Rate) -> models.Rate:
    stamp = r.observed_at
    return models.Rate(
        currency=r.currency,
        value=models.parse_decimal(r.value),
        date=_day(r.date),
        sources=tuple(r.sources[:]),
        observed_at=_moment(stamp.seconds, stamp.nanos) if r.HasField("observed_at") else None,
        flag=r.flag,
        replay=r.replay,
    )


def _raise(exc: grpc.aio.AioRpcError, endpoint: Endpoint) -> NoReturn:
    code = exc.code()
    detail = exc.details() or code.name
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        raise request_error(detail) from exc
    if code == grpc.StatusCode.NOT_FOUND:
        raise request_error(detail, not_found=True) from exc
    if code in TRANSIENT:
        raise TransientError(f"{code.name}: {detail}") from exc
    raise TransientError(f"{code.name}: {detail}") from exc  # anything else: let another endpoint try


class GrpcTransport:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.pool = EndpointPool(config, self._probe)
        self._channels: dict[Endpoint, grpc.aio.Channel] = {}
        self._stubs: dict[Endpoint, rates_pb2_grpc.RatesServiceStub] = {}
        self._options: list[tuple[str, Any]] = [
            ("grpc.service_config", service_config(config)),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Reconnect quickly after an outage (grpc's default backoff grows to 120 s): the pool
            # probes a recovered endpoint again after down_seconds and should find it connected.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            *config.extra_channel_options,
        ]

    def _channel(self, endpoint: Endpoint) -> grpc.aio.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = grpc.aio.insecure_channel(endpoint.address, options=self._options)
            self._channels[endpoint] = channel
        return channel

    def _stub(self, endpoint: Endpoint) -> rates_pb2_grpc.RatesServiceStub:
        stub = self._stubs.get(endpoint)
        if stub is None:
            stub = self._stubs[endpoint] = rates_pb2_grpc.RatesServiceStub(self._channel(endpoint))
        return stub

    async def _probe(self, endpoint: Endpoint, timeout: float) -> bool:
        health = health_pb2_grpc.HealthStub(self._channel(endpoint))
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def _unary(self, method: str, request: Any, timeout: float) -> Any:
        async def attempt(endpoint: Endpoint, attempt_timeout: float) -> Any:
            call = getattr(self._stub(endpoint), method)
            try:
                return await call(request, timeout=attempt_timeout)
            except grpc.aio.AioRpcError as exc:
                _raise(exc, endpoint)

        return await self.pool.call(attempt, timeout)

    async def latest(self, base: str, symbols: Sequence[str], source: str, timeout: float) -> models.Rates:
        request = rates_pb2.GetLatestRatesRequest(base=base, symbols=symbols, source=source)
        reply: rates_pb2.GetLatestRatesResponse = await self._unary("GetLatestRates", request, timeout)
        return models.Rates(
            base=reply.base,
            date=models.parse_date(reply.date),
            rates={r.currency: _rate(r) for r in reply.rates},
            origin=models.Origin.KURS,
            sequence=reply.sequence,
        )

    async def historical(
        self, date: dt.date, base: str, symbols: Sequence[str], source: str, timeout: float
    ) -> models.Rates:
        request = rates_pb2.GetHistoricalRatesRequest(
            date=date.isoformat(), base=base, symbols=symbols, source=source
        )
        reply: rates_pb2.GetHistoricalRatesResponse = await self._unary(
            "GetHistoricalRates", request, timeout
        )
        return models.Rates(
            base=reply.base,
            date=models.parse_date(reply.date),
            rates={r.currency: _rate(r) for r in reply.rates},
            origin=models.Origin.KURS,
            requested_date=models.parse_date(reply.requested_date),
        )

    async def timeseries(
        self, start: dt.date, end: dt.date, base: str, symbols: Sequence[str], source: str, timeout: float
    ) -> models.TimeSeries:
        request = rates_pb2.GetTimeSeriesRequest(
            start_date=start.isoformat(), end_date=end.isoformat(), base=base, symbols=symbols, source=source
        )
        reply: rates_pb2.GetTimeSeriesResponse = await self._unary("GetTimeSeries", request, timeout)
        return models.TimeSeries(
            base=reply.base,
            start_date=dt.date.fromisoformat(reply.start_date),
            end_date=dt.date.fromisoformat(reply.end_date),
            days={
                dt.date.fromisoformat(d.date): {
                    c: models.parse_decimal(v) for c, v in sorted(d.rates.items())
                }
                for d in reply.days
            },
            sources=tuple(reply.sources),
        )

    async def convert(
        self, from_: str, to: str, amount: Decimal, date: dt.date | None, source: str, timeout: float
    ) -> models.Conversion:
        request = rates_pb2.ConvertRequest(
            from_currency=from_,
            to_currency=to,
            amount=str(amount),
            date=date.isoformat() if date else "",
            source=source,
        )
        reply: rates_pb2.ConvertResponse = await self._unary("Convert", request, timeout)
        return models.Conversion(
            from_currency=reply.from_currency,
            to_currency=reply.to_currency,
            amount=models.parse_decimal(reply.amount),
            rate=models.parse_decimal(reply.rate),
            result=models.parse_decimal(reply.result),
            date=models.parse_date(reply.date),
            sources=tuple(reply.sources),
        )

    async def currencies(self, timeout: float) -> models.Listing:
        reply: rates_pb2.ListCurrenciesResponse = await self._unary(
            "ListCurrencies", rates_pb2.ListCurrenciesRequest(), timeout
        )
        return models.Listing(
            currencies=tuple(
                models.Currency(
                    c.code, c.name, models.parse_date(c.first_date), models.parse_date(c.last_date), c.active
                )
                for c in reply.currencies
            )
        )

    async def publishers(self, timeout: float) -> models.Listing:
        reply: rates_pb2.ListPublishersResponse = await self._unary(
            "ListPublishers", rates_pb2.ListPublishersRequest(), timeout
        )
        return models.Listing(
            publishers=tuple(
                models.Publisher(
                    p.source,
                    models.parse_date(p.first_date),
                    models.parse_date(p.last_date),
                    tuple(
                        models.PublisherCurrency(
                            c.code, models.parse_date(c.first_date), models.parse_date(c.last_date)
                        )
                        for c in p.currencies
                    ),
                )
                for p in reply.publishers
            )
        )

    async def stream(
        self, endpoint: Endpoint, base: str, symbols: Sequence[str], since: int, deadline: float
    ) -> AsyncIterator[models.StreamMessage]:
        request = rates_pb2.StreamRatesRequest(base=base, symbols=symbols, since_sequence=since)
        call = self._stub(endpoint).StreamRates(request, timeout=deadline)
        try:
            async for message in call:
                body = message.snapshot if message.HasField("snapshot") else message.update
                yield models.StreamMessage(
                    sequence=message.sequence,
                    kind="snapshot" if message.HasField("snapshot") else "update",
                    base=body.base,
                    date=models.parse_date(body.date),
                    rates={r.currency: _rate(r) for r in body.rates},
                )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise StreamRenewal(f"stream deadline of {deadline}s reached") from exc
            _raise(exc, endpoint)
        finally:
            call.cancel()
        raise TransientError("the server ended the stream")

    async def close(self) -> None:
        channels, self._channels, self._stubs = list(self._channels.values()), {}, {}
        for channel in channels:
            await channel.close()
