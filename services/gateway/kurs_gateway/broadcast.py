"""WebSocket broadcaster for /ws/rates/stream: each message encoded once per view, bounded clients.

Clients are grouped by view: (base, symbols, source). One task per gateway process follows the
live snapshot; on a change it computes each view's figures once, diffs them against what the view
last sent and encodes the message once (`Outgoing`: a `str`, and the same text framed once as
WebSocket bytes). A `Client` (the ASGI route on the main port) gets that `str` in its outbox and
its own task writes it; a `TransportClient` (stream_listener.py) gets the frame bytes written
straight into its transport by this task. A client joins with its view's current state (`sent`,
sequence), so its first message and later updates agree; one idle for `heartbeat_seconds` gets
the view's heartbeat (encoded once too).

Bounds (#17): a client's outbox holds at most `limit` unsent messages (a transport: `limit` KiB in
its write buffer, `write_bound`). A client that lets more pile up is dropped: its outbox cleared
(a transport closed after its buffer), closed with 4008 (`SLOW_CONSUMER`) and a reason; it may
reconnect with `since=<last sequence>`. The task stops when the last client leaves and, after a
large crowd has left, returns freed memory to the operating system (gc, then malloc_trim).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import orjson

from kurs_common.quotes import rebase_entries
from kurs_gateway import ws_frames
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

log = logging.getLogger(__name__)

SLOW_CONSUMER = 4008
TRIM_AFTER = 500  # clients that must have left before freed memory is handed back
TRIM_AGAIN_SECONDS = 5.0
CHUNK = 256  # work between two yields to the event loop (HTTP keeps flowing): 256 outbox appends
WRITE_BYTES_PER_MESSAGE = 1024  # a transport client may hold `limit` KiB of unsent frames

ViewKey = tuple[str, tuple[str, ...] | None, str | None]
Fetch = Callable[[str, list[str] | None], Awaitable[tuple[dict[str, str], str]]]


def blend_values(snapshot: LiveSnapshot, base: str, symbols: list[str] | None) -> dict[str, str]:
    """The blended figures of one view, rebased from the pivot."""
    if base != PIVOT and base not in snapshot.entries:
        return {}
    return {r.currency: r.value for r in rebase_entries(snapshot.entries, PIVOT, base, symbols)}


def encode(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def write_bound(limit: int) -> int:
    """The write buffer a transport client may fill before it is dropped (bytes)."""
    return max(1, limit) * WRITE_BYTES_PER_MESSAGE


def slow_consumer_reason(what: str) -> str:
    return f"slow consumer: more than {what} unsent; reconnect with since="[:120]


class Outgoing:
    """One message of a view, encoded once: its text (ASGI outboxes) and frame (transports)."""

    __slots__ = ("frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.frame = ws_frames.text_frame(text)


class Subscriber(Protocol):
    """What the broadcaster needs of a client of either kind."""

    view: View
    last_push: float
    cost: int  # the work of one push, in outbox appends (CHUNK of them between two yields)
    counted: int  # 1: its messages are counted here (`on_written`); 0: by the ASGI metrics layer

    def push(self, message: Outgoing, limit: int, now: float) -> bool: ...

    def release(self) -> None: ...

    def stop(self) -> None: ...


class Client:
    """One ASGI connection's bounded outbox; its connection task writes what `next()` returns."""

    __slots__ = ("dropped", "gone", "last_push", "outbox", "task", "view", "waiter")
    cost, counted = 1, 0

    def __init__(self, view: View) -> None:
        self.view = view
        self.outbox: deque[str] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.last_push = time.monotonic()
        self.dropped = False  # too slow: to be closed with SLOW_CONSUMER
        self.gone = False  # the peer went away
        self.task: asyncio.Task[Any] | None = None  # the connection task, while it writes

    def push(self, message: Outgoing, limit: int, now: float) -> bool:
        """Queue the message; True when this push found the outbox full and dropped the client."""
        if self.dropped or self.gone:
            return False
        full = len(self.outbox) >= limit
        if full:
            self.dropped = True
            self.outbox.clear()
            if self.waiter is None and self.task is not None:
                self.task.cancel()  # stuck writing to a reader that does not read: stop it
        else:
            self.outbox.append(message.text)
        self.last_push = now
        self.wake()
        return full

    def release(self) -> None:
        self.gone = True
        self.outbox.clear()

    def stop(self) -> None:
        self.gone = True
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> str | None:
        """The next message to write; None once the client is dropped or gone."""
        while not self.outbox:
            if self.dropped or self.gone:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.dropped or self.gone:
            return None
        return self.outbox.popleft()


class View:
    """The clients sharing one (base, symbols, source) and what was last broadcast to them."""

    def __init__(self, key: ViewKey, sent: dict[str, str], day: str | None, sequence: int) -> None:
        self.key = key
        self.base, symbols, self.source = key
        self.symbols = list(symbols) if symbols is not None else None
        self.sent = sent
        self.day = day
        self.sequence = sequence
        self.clients: set[Subscriber] = set()
        self.fetch: Fetch | None = None  # a publisher view's reader (source=)
        self._snapshot: Outgoing | None = None
        self._heartbeat: Outgoing | None = None

    def message(self, kind: str, rates: dict[str, str]) -> Outgoing:
        body: dict[str, Any] = {"type": kind, "sequence": self.sequence, "base": self.base, "date": self.day}
        body["rates"] = rates
        if self.source is not None:
            body["source"] = self.source
        return Outgoing(encode(body))

    def snapshot_message(self) -> Outgoing:
        if self._snapshot is None:
            self._snapshot = self.message("snapshot", self.sent)
        return self._snapshot

    def heartbeat_message(self) -> Outgoing:
        if self._heartbeat is None:
            self._heartbeat = Outgoing(encode({"type": "heartbeat", "sequence": self.sequence}))
        return self._heartbeat

    def opening(self, missed: frozenset[str] | None) -> Outgoing:
        """A joining client's first message: the snapshot, or (resuming with since=) an update
        with every figure that changed after the client's sequence (`missed`)."""
        if missed is None:
            return self.snapshot_message()
        base = self.base
        return self.message("update", {k: v for k, v in self.sent.items() if k in missed or base in missed})

    def advance(
        self, sequence: int, current: dict[str, str], day: str | None, resync: bool
    ) -> Outgoing | None:
        """Take the view to `current`; the message its clients need (None: nothing changed)."""
        previous = self.sent
        self.sequence, self.sent, self.day = sequence, current, day
        self._snapshot = self._heartbeat = None
        if resync or previous.keys() - current.keys():
            # The upstream view was replaced or a currency is gone: an update cannot say
            # "removed", so the whole view is sent again.
            return self.snapshot_message()
        fresh = {k: v for k, v in current.items() if previous.get(k) != v}
        return self.message("update", fresh) if fresh else None


S = TypeVar("S", bound=Subscriber)


class Broadcaster:
    """Follows one LiveSnapshot and feeds every /ws/rates/stream client of this process."""

    def __init__(
        self, snapshot: LiveSnapshot, heartbeat_seconds: float, limit: int, switch: float | None = None
    ) -> None:
        self.snapshot = snapshot
        self.heartbeat_seconds = heartbeat_seconds
        self.limit = max(1, limit)
        self.switch = switch  # the GIL switch interval while writing (settings.switch_interval_seconds)
        self._writers, self._usual = 0, 0.005
        self.views: dict[ViewKey, View] = {}
        self.clients = 0
        self.peak = 0
        self.dropped = 0  # slow consumers dropped since start
        self.on_written: Callable[[int], None] | None = None  # messages written to counted clients
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the broadcasting task runs (it stops when the last client has left)."""
        return self._task is not None

    # -- views, joining and leaving (a view is made and joined with no await in between)

    def blend_view(self, base: str, symbols: list[str] | None) -> View:
        key: ViewKey = (base, tuple(symbols) if symbols is not None else None, None)
        view = self.views.get(key)
        if view is None:
            snapshot = self.snapshot
            day = snapshot.day.isoformat() if snapshot.day else None
            view = self.views[key] = View(key, blend_values(snapshot, base, symbols), day, snapshot.sequence)
        return view

    def publisher_view(self, key: ViewKey, first: dict[str, str], day: str, fetch: Fetch) -> View:
        """A publisher's view; `first` (just read upstream) seeds it when it is new."""
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = View(key, first, day, self.snapshot.sequence)
            view.fetch = fetch
        return view

    def attach(self, client: S) -> S:
        """Add a client made for one of this broadcaster's views (from `*_view`)."""
        client.view.clients.add(client)
        self.clients += 1
        self.peak = max(self.peak, self.clients)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ws-broadcast")
        return client

    def leave(self, client: Subscriber) -> None:
        client.release()
        view = client.view
        if client in view.clients:
            view.clients.discard(client)
            self.clients -= 1
            if not view.clients and self.views.get(view.key) is view:
                del self.views[view.key]

    # -- the broadcasting task

    async def _run(self) -> None:
        tick = max(0.05, min(1.0, self.heartbeat_seconds / 4))
        try:
            with self.snapshot.listen() as listener:
                if any(view.sequence != self.snapshot.sequence for view in self.views.values()):
                    await self._changed(False)  # a change landed between the first join and now
                while self.views:
                    try:
                        first = await asyncio.wait_for(listener.queue.get(), timeout=tick)
                    except TimeoutError:
                        await self._heartbeats()
                        continue
                    resync = first.resync
                    while not listener.queue.empty():
                        resync = listener.queue.get_nowait().resync or resync
                    if listener.overflowed:  # this task fell behind: every view is sent whole
                        listener.overflowed, resync = False, True
                    await self._changed(resync)
                    await self._heartbeats()
        except Exception:
            log.exception("WebSocket broadcaster failed; its clients are closed")
            for view in list(self.views.values()):
                for client in list(view.clients):
                    client.stop()
        finally:
            self._task = None
            if not self.views:
                self._release()

    async def _changed(self, resync: bool) -> None:
        snapshot = self.snapshot
        sequence = snapshot.sequence
        day = snapshot.day.isoformat() if snapshot.day else None
        publishers, messages = [], []
        for view in list(self.views.values()):  # every view from the same state, before any yield
            if view.fetch is not None:
                publishers.append(view)
                continue
            message = view.advance(sequence, blend_values(snapshot, view.base, view.symbols), day, resync)
            if message is not None:
                messages.append((view, message))
        for view, message in messages:
            await self._push(view, message)
        if publishers:
            await asyncio.gather(*(self._refresh(view, sequence, resync) for view in publishers))

    async def _refresh(self, view: View, sequence: int, resync: bool) -> None:
        assert view.fetch is not None
        try:
            current, day = await view.fetch(view.base, view.symbols)
        except Exception as exc:  # read again on the next change; the clients keep what they have
            log.info("publisher view not refreshed", extra={"source": view.source, "error": repr(exc)})
            return
        message = view.advance(sequence, current, day, resync)
        if message is not None and self.views.get(view.key) is view:
            await self._push(view, message)

    async def _push(self, view: View, message: Outgoing) -> None:
        await self._hand_out((client, message) for client in list(view.clients))

    async def _heartbeats(self) -> None:
        """Each idle client's view heartbeat (clients that joined together fall due together)."""
        due = time.monotonic() - self.heartbeat_seconds
        views = list(self.views.values())
        await self._hand_out(
            (c, v.heartbeat_message()) for v in views for c in list(v.clients) if c.last_push <= due
        )

    async def _hand_out(self, pushes: Iterable[tuple[Subscriber, Outgoing]]) -> None:
        """Push each message to its client (an outbox append or a transport write), yielding to
        the loop after each CHUNK of work (256 outbox appends, or 256 / `cost` transport writes)
        so that HTTP requests (and the ASGI clients' own writes) run between chunks."""
        spent = written = 0
        now = time.monotonic()
        with self._writing():
            for client, message in pushes:
                if spent >= CHUNK:
                    await asyncio.sleep(0)
                    spent, now = 0, time.monotonic()
                if client.push(message, self.limit, now):
                    self.dropped += 1
                spent += client.cost
                written += client.counted
        if written and self.on_written is not None:
            self.on_written(written)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """While messages are written, the loop's thread hands the GIL over every `switch`
        seconds instead of the usual 5 ms, so requests keep reaching it (granian's threads)."""
        if self.switch is not None and not self._writers:
            self._usual = sys.getswitchinterval()
            sys.setswitchinterval(self.switch)
        self._writers += 1
        try:
            yield
        finally:
            self._writers -= 1
            if self.switch is not None and not self._writers:
                sys.setswitchinterval(self._usual)

    def _release(self) -> None:
        """After a crowd has left: collect and hand freed heap pages back to the OS, now and
        again a few seconds later (the server frees its side of closed connections late)."""
        if self.peak < TRIM_AFTER:
            return
        self.peak = self.clients
        _trim()
        asyncio.get_running_loop().call_later(TRIM_AGAIN_SECONDS, _trim)


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
