"""KursClient: the blocking client, for code without an event loop.

It owns an AsyncKursClient and one private event loop in a daemon thread ("kurs-client"), started
on first use; every call is handed to that loop and waited for. A fresh cached latest() is
answered in the calling thread without touching the loop. One client may be shared by threads.
Use it as a context manager, or call close().
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any, Concatenate, ParamSpec, TypeVar

from kurs_client.aio import AsyncKursClient
from kurs_client.config import ClientConfig
from kurs_client.errors import KursError
from kurs_client.models import RateEvent

T = TypeVar("T")
P = ParamSpec("P")
_MARGIN = 1.0  # seconds beyond a call's own deadline before the calling thread gives up


def _blocking(
    method: Callable[Concatenate[AsyncKursClient, P], Coroutine[Any, Any, T]],
    cached: Callable[..., T | None] | None = None,
) -> Callable[Concatenate[KursClient, P], T]:
    """The blocking form of an AsyncKursClient method: the same parameters, the call handed to
    the client's loop thread and waited for (up to its `timeout`, plus a margin). `cached`, when
    given, is asked first in the calling thread with the same arguments but `timeout`: an answer
    it has (not None) is returned without touching the loop."""

    @functools.wraps(method)
    def call(self: KursClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        client = self.aio
        if cached is not None:
            asked = kwargs if "timeout" not in kwargs else {k: v for k, v in kwargs.items() if k != "timeout"}
            answer = cached(client, *args, **asked)
            if answer is not None:
                return answer
        timeout = kwargs.get("timeout")
        return self._run(
            method(client, *args, **kwargs), timeout if isinstance(timeout, float | int) else None
        )

    return call


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

    # The same parameters as AsyncKursClient's, by construction (see _blocking); a fresh cached
    # latest() is answered in the calling thread.
    latest = _blocking(AsyncKursClient.latest, cached=AsyncKursClient.cached_latest)
    historical = _blocking(AsyncKursClient.historical)
    timeseries = _blocking(AsyncKursClient.timeseries)
    convert = _blocking(AsyncKursClient.convert)
    currencies = _blocking(AsyncKursClient.currencies)
    publishers = _blocking(AsyncKursClient.publishers)

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
