"""AsyncKursClient: the asyncio client. Every call resolves through the same chain:

1. a fresh cached answer (younger than `cache_seconds`, 30 minutes by default);
2. Kurs over the configured transport (gRPC or REST), failing over between endpoints, the
   caller's region first, within the call's deadline; a pair Kurs lacks is triangulated via USD;
3. ExchangeRate-API v6 (when a key is configured; latest, historical and convert without
   `source`), also triangulated via USD;
4. the last good answer however old (within `stale_seconds`), marked `stale=True`;
5. otherwise a typed error: UnavailableError (nothing answered), UnsupportedCurrencyError (no
   source serves the currency), InvalidArgumentError / NotFoundError (the request is wrong;
   raised at once, without fallback).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from kurs_client.cache import TtlCache
from kurs_client.config import ClientConfig
from kurs_client.errors import InvalidArgumentError, UnavailableError, UnsupportedCurrencyError
from kurs_client.exchangerate_api import ExchangeRateApi, ExchangeRateApiError
from kurs_client.models import (
    Conversion,
    Currency,
    Listing,
    Origin,
    Publisher,
    RateEvent,
    Rates,
    TimeSeries,
    convert_amount,
    parse_decimal,
)
from kurs_client.stream import resumable_stream
from kurs_client.transport import Transport
from kurs_client.triangulate import PIVOT, crossed, rates_with_triangulation


class _Markable(Protocol):
    def marked(self, origin: Origin, *, stale: bool) -> Any: ...


R = TypeVar("R", bound=_Markable)
CODE = re.compile(r"^[A-Z]{3,4}$")
SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_AMOUNT = Decimal(10) ** 15


def code(field: str, text: str) -> str:
    value = text.strip().upper() if isinstance(text, str) else ""
    if not CODE.match(value):
        raise InvalidArgumentError(field, f"{text!r} is not a three-letter ISO 4217 currency code")
    return value


def codes(field: str, values: str | Iterable[str]) -> tuple[str, ...]:
    parts = values.split(",") if isinstance(values, str) else [p for v in values for p in v.split(",")]
    return tuple(dict.fromkeys(code(field, p) for p in parts if p.strip()))


def source_id(text: str | None) -> str:
    value = (text or "").strip().lower()
    if value and not SOURCE.match(value):
        raise InvalidArgumentError("source", f"{text!r} is not a publisher id")
    return value


def amount_of(value: Decimal | str | int) -> Decimal:
    if isinstance(value, float):
        raise InvalidArgumentError("amount", "pass a Decimal or a decimal string, never a float")
    try:
        amount = parse_decimal(value)
    except ValueError as exc:
        raise InvalidArgumentError("amount", str(exc)) from exc
    if amount <= 0 or amount > MAX_AMOUNT:
        raise InvalidArgumentError("amount", "must be > 0 and at most 10^15")
    return amount


class AsyncKursClient:
    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: Transport | None = None,
        exchangerate_api: ExchangeRateApi | None = None,
    ) -> None:
        self.config = config
        self._transport = transport
        self._v6 = exchangerate_api
        if self._v6 is None and config.exchangerate_api_key:
            self._v6 = ExchangeRateApi(config.exchangerate_api_url, config.exchangerate_api_key)
        self.cache: TtlCache[Any] = TtlCache(config.cache_seconds, config.cache_entries, config.stale_seconds)

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            if self.config.transport == "rest":
                from kurs_client.rest_transport import RestTransport

                self._transport = RestTransport(self.config)
            else:
                from kurs_client.grpc_transport import GrpcTransport

                self._transport = GrpcTransport(self.config)
        return self._transport

    async def __aenter__(self) -> AsyncKursClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
        if self._v6 is not None:
            await self._v6.close()

    # -- the chain ---------------------------------------------------------------------------
    async def _resolve(
        self,
        key: Hashable,
        kurs: Callable[[float], Awaitable[R]],
        v6: Callable[[float], Awaitable[R]] | None,
        timeout: float | None,
    ) -> R:
        fresh: R | None = self.cache.fresh(key)  # stored already marked as a cache answer
        if fresh is not None:
            return fresh
        budget = timeout or self.config.timeout
        failures: list[str] = []
        unsupported: UnsupportedCurrencyError | None = None
        unavailable = False
        legs = [("kurs", kurs), *([("exchangerate-api", v6)] if v6 is not None else [])]
        for name, leg in legs:
            try:
                result = await leg(budget)
            except UnsupportedCurrencyError as exc:
                unsupported = unsupported or exc
                failures.append(f"{name}: {exc}")
            except (UnavailableError, ExchangeRateApiError) as exc:
                unavailable = True
                failures.append(f"{name}: {exc}")
            else:
                self.cache.put(key, result.marked(Origin.CACHE, stale=False))
                return result
        last = self.cache.last_good(key) if unavailable else None
        if last is not None:
            return last[0].marked(Origin.CACHE, stale=True)  # type: ignore[no-any-return]
        if unsupported is not None and not unavailable:
            raise unsupported
        raise UnavailableError("no source answered and nothing is cached", tuple(failures))

    def cached_latest(
        self, base: str = "USD", symbols: str | Iterable[str] = (), *, source: str | None = None
    ) -> Rates | None:
        """A fresh cached latest() answer without any I/O (thread-safe), or None."""
        fresh: Rates | None = self.cache.fresh(_latest_key(base, symbols, source))
        return fresh

    # -- calls -------------------------------------------------------------------------------
    async def latest(
        self,
        base: str = "USD",
        symbols: str | Iterable[str] = (),
        *,
        source: str | None = None,
        timeout: float | None = None,
    ) -> Rates:
        """The newest rate of every currency (or of `symbols`) per one `base`."""
        key = _latest_key(base, symbols, source)
        fresh: Rates | None = self.cache.fresh(key)  # the hot path: no closure, no coroutine below
        if fresh is not None:
            return fresh
        _, b, s, src = key
        v6 = self._v6

        async def kurs(t: float) -> Rates:
            return await rates_with_triangulation(lambda b2, s2: self.transport.latest(b2, s2, src, t), b, s)

        async def fallback(t: float) -> Rates:
            assert v6 is not None
            return await rates_with_triangulation(lambda b2, s2: v6.latest(b2, s2, t), b, s)

        return await self._resolve(key, kurs, fallback if v6 and not src else None, timeout)

    async def historical(
        self,
        date: dt.date | str,
        base: str = "USD",
        symbols: str | Iterable[str] = (),
        *,
        source: str | None = None,
        timeout: float | None = None,
    ) -> Rates:
        """The rates of `date` (or of the last business day before it)."""
        day = _date("date", date)
        b, s, src = code("base", base), codes("symbols", symbols), source_id(source)
        v6 = self._v6

        async def kurs(t: float) -> Rates:
            return await rates_with_triangulation(
                lambda b2, s2: self.transport.historical(day, b2, s2, src, t), b, s
            )

        async def fallback(t: float) -> Rates:
            assert v6 is not None
            return await rates_with_triangulation(lambda b2, s2: v6.historical(day, b2, s2, t), b, s)

        key = ("historical", day, b, s, src)
        return await self._resolve(key, kurs, fallback if v6 and not src else None, timeout)

    async def timeseries(
        self,
        start_date: dt.date | str,
        end_date: dt.date | str,
        base: str = "USD",
        symbols: str | Iterable[str] = (),
        *,
        source: str | None = None,
        timeout: float | None = None,
    ) -> TimeSeries:
        """Every publication day from `start_date` to `end_date` (inclusive; at most 366 days)."""
        start, end = _date("start_date", start_date), _date("end_date", end_date)
        b, s, src = code("base", base), codes("symbols", symbols), source_id(source)

        async def kurs(t: float) -> TimeSeries:
            return await self.transport.timeseries(start, end, b, s, src, t)

        return await self._resolve(("timeseries", start, end, b, s, src), kurs, None, timeout)

    async def convert(
        self,
        from_currency: str,
        to_currency: str,
        amount: Decimal | str | int,
        *,
        date: dt.date | str | None = None,
        source: str | None = None,
        timeout: float | None = None,
    ) -> Conversion:
        """`amount` of `from_currency` in `to_currency` (result rounded half-even to 6 places)."""
        f, to, value = code("from", from_currency), code("to", to_currency), amount_of(amount)
        day = _date("date", date) if date is not None else None
        src = source_id(source)
        transport, v6 = self.transport, self._v6

        async def kurs(t: float) -> Conversion:
            async def table(b: str, s: tuple[str, ...]) -> Rates:
                if day is None:
                    return await transport.latest(b, s, src, t)
                return await transport.historical(day, b, s, src, t)

            return await _convert_or_triangulate(
                lambda: transport.convert(f, to, value, day, src, t), table, f, to, value
            )

        async def fallback(t: float) -> Conversion:
            assert v6 is not None

            async def table(b: str, s: tuple[str, ...]) -> Rates:
                return await (v6.latest(b, s, t) if day is None else v6.historical(day, b, s, t))

            return await _convert_or_triangulate(
                lambda: v6.convert(f, to, value, day, t), table, f, to, value
            )

        key = ("convert", f, to, value, day, src)
        return await self._resolve(key, kurs, fallback if v6 and not src else None, timeout)

    async def currencies(self, *, timeout: float | None = None) -> tuple[Currency, ...]:
        """Every currency served, with its name, first and last dates, and whether it is active."""
        listing = await self._resolve(("currencies",), self.transport.currencies, None, timeout)
        return listing.currencies

    async def publishers(self, *, timeout: float | None = None) -> tuple[Publisher, ...]:
        """Every publisher whose figures are stored (gRPC only)."""
        listing: Listing = await self._resolve(("publishers",), self.transport.publishers, None, timeout)
        return listing.publishers

    def stream_rates(
        self, base: str = "USD", symbols: str | Iterable[str] = (), *, since: int = 0
    ) -> AsyncGenerator[RateEvent, None]:
        """A snapshot, then every change; resumes from the last sequence after any disconnect or
        failover, so the caller sees neither a gap nor a duplicate (see kurs_client.stream)."""
        return resumable_stream(
            self.transport, self.config, code("base", base), codes("symbols", symbols), since
        )


async def _convert_or_triangulate(
    direct: Callable[[], Awaitable[Conversion]],
    table: Callable[[str, tuple[str, ...]], Awaitable[Rates]],
    from_: str,
    to: str,
    amount: Decimal,
) -> Conversion:
    try:
        return await direct()
    except UnsupportedCurrencyError:
        if PIVOT in (from_, to):
            raise
    usd = await table(PIVOT, (from_, to))
    rate = crossed(from_, [to], usd)[to]
    return Conversion(
        from_currency=from_,
        to_currency=to,
        amount=amount,
        rate=rate.value,
        result=convert_amount(amount, rate.value),
        date=rate.date,
        sources=rate.sources,
        origin=usd.origin,
        via=PIVOT,
    )


def _latest_key(
    base: str, symbols: str | Iterable[str], source: str | None
) -> tuple[str, str, tuple[str, ...], str]:
    return _normalized_latest_key(
        base, symbols if isinstance(symbols, str | tuple) else tuple(symbols), source
    )


@functools.lru_cache(maxsize=1024)
def _normalized_latest_key(
    base: str, symbols: str | tuple[str, ...], source: str | None
) -> tuple[str, str, tuple[str, ...], str]:
    """The cache key of latest(): checked and normalized once per distinct argument tuple."""
    return ("latest", code("base", base), codes("symbols", symbols), source_id(source))


def _date(field: str, value: dt.date | str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except (ValueError, AttributeError) as exc:
        raise InvalidArgumentError(field, f"{value!r} is not a YYYY-MM-DD date") from exc
