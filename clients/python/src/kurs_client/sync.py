"""KursClient: the blocking client, for code without an event loop.

It owns an AsyncKursClient and one private event loop in a daemon thread ("kurs-client"), started
on first use; every call is handed to that loop and waited for. A fresh cached latest() is
answered in the calling thread without touching the loop. One client may be shared by threads.
Use it as a context manager, or call close().
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import threading
from collections.abc import Coroutine, Generator, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from kurs_client.aio import AsyncKursClient
from kurs_client.config import ClientConfig
from kurs_client.errors import KursError
from kurs_client.models import Conversion, Currency, Publisher, RateEvent, Rates, TimeSeries

T = TypeVar("T")
_MARGIN = 1.0  # seconds beyond a call's own deadline before the calling thread gives up


class KursClient:
    def __init__(self, config: ClientConfig, **async_options: Any) -> None:
        self.config = config
        self._async_options = async_options
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: AsyncKursClient | None = None

    def __enter__(self) -> KursClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> tuple[asyncio.AbstractEventLoop, AsyncKursClient]:
        with self._lock:
            if self._loop is None or self._client is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="kurs-client", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
                self._client = AsyncKursClient(self.config, **self._async_options)
            return self._loop, self._client

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        loop, _ = self._start()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result((timeout or self.config.timeout) + _MARGIN)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise KursError("the client's event loop did not answer in time") from exc

    @property
    def aio(self) -> AsyncKursClient:
        """The underlying asyncio client (bound to the private loop)."""
        return self._start()[1]

    def latest(
        self,
        base: str = "USD",
        symbols: str | Iterable[str] = (),
        *,
        source: str | None = None,
        timeout: float | None = None,
    ) -> Rates:
        _, client = self._start()
        cached = client.cached_latest(base, symbols, source=source)
        if cached is not None:
            return cached
        return self._run(client.latest(base, symbols, source=source, timeout=timeout), timeout)

    def historical(
        self,
        date: dt.date | str,
        base: str = "USD",
        symbols: str | Iterable[str] = (),
        *,
        source: str | None = None,
        timeout: float | None = None,
    ) -> Rates:
        return self._run(self.aio.historical(date, base, symbols, source=source, timeout=timeout), timeout)

    def timeseries(
        self,
        start_date: dt.date | str,
        end_date: dt.date | str,
        base: str = "USD",
        symbols: str | Iterable[str] = (),
        *,
        source: str | None = None,
        timeout: float | None = None,
    ) -> TimeSeries:
        call = self.aio.timeseries(start_date, end_date, base, symbols, source=source, timeout=timeout)
        return self._run(call, timeout)

    def convert(
        self,
        from_currency: str,
        to_currency: str,
        amount: Decimal | str | int,
        *,
        date: dt.date | str | None = None,
        source: str | None = None,
        timeout: float | None = None,
    ) -> Conversion:
        call = self.aio.convert(from_currency, to_currency, amount, date=date, source=source, timeout=timeout)
        return self._run(call, timeout)

    def currencies(self, *, timeout: float | None = None) -> tuple[Currency, ...]:
        return self._run(self.aio.currencies(timeout=timeout), timeout)

    def publishers(self, *, timeout: float | None = None) -> tuple[Publisher, ...]:
        return self._run(self.aio.publishers(timeout=timeout), timeout)

    def stream_rates(
        self, base: str = "USD", symbols: str | Iterable[str] = (), *, since: int = 0
    ) -> Generator[RateEvent, None, None]:
        """Blocking iterator over the resumable stream; closing it (or breaking out of a for
        loop and dropping it) ends the subscription."""
        loop, client = self._start()
        events = client.stream_rates(base, symbols, since=since)
        try:
            while True:
                future = asyncio.run_coroutine_threadsafe(_next(events), loop)
                event = future.result()
                if event is None:
                    return
                yield event
        finally:
            asyncio.run_coroutine_threadsafe(events.aclose(), loop).result(self.config.timeout)

    def close(self) -> None:
        with self._lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = None
        if loop is None or client is None:
            return
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(self.config.timeout)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(self.config.timeout)
        loop.close()


async def _next(events: Any) -> RateEvent | None:
    try:
        event: RateEvent = await events.__anext__()
    except StopAsyncIteration:
        return None
    return event
