"""WebSocket broadcaster for /ws/rates/stream: each message encoded once per view, bounded outboxes.

Clients are grouped by view: (base, symbols, source). One broadcaster task per gateway process
follows the live snapshot; on a change it computes each view's figures once, diffs them against
what that view last sent, encodes the message once (one `str`) and appends that same object to
the outbox of every client of the view. Each client's own connection task only writes what its
outbox holds: no per-client rebasing, diffing or JSON encoding.

A client joins with the view's current state (its `sent` figures and sequence), so a snapshot
sent at join time and the updates broadcast afterwards always agree. Heartbeats come from the
same task: a client that has been sent nothing for `heartbeat_seconds` gets its view's
heartbeat (also encoded once).

Bounds (#17): a client's outbox holds at most `limit` unsent messages. A client that lets more
pile up (it reads too slowly, or not at all) is dropped: its outbox is cleared and the
connection is closed with code 4008 (`SLOW_CONSUMER`) and a reason; it may reconnect with
`since=<last sequence>`. The broadcaster stops when its last client leaves and, after a
large crowd has left, returns freed memory to the operating system (gc, then malloc_trim).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from kurs_common.quotes import rebase_entries
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

log = logging.getLogger(__name__)

SLOW_CONSUMER = 4008
TRIM_AFTER = 500  # clients that must have left before freed memory is handed back
TRIM_AGAIN_SECONDS = 5.0
CHUNK = 256  # clients handed a message between two yields to the event loop (HTTP keeps flowing)

ViewKey = tuple[str, tuple[str, ...] | None, str | None]
Fetch = Callable[[str, list[str] | None], Awaitable[tuple[dict[str, str], str]]]


def blend_values(snapshot: LiveSnapshot, base: str, symbols: list[str] | None) -> dict[str, str]:
    """The blended figures of one view, rebased from the pivot."""
    if base != PIVOT and base not in snapshot.entries:
        return {}
    return {r.currency: r.value for r in rebase_entries(snapshot.entries, PIVOT, base, symbols)}


def encode(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


class Client:
    """One connection's bounded outbox; its connection task writes what `next()` returns."""

    __slots__ = ("dropped", "gone", "last_push", "outbox", "task", "view", "waiter")

    def __init__(self, view: View) -> None:
        self.view = view
        self.outbox: deque[str] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.last_push = time.monotonic()
        self.dropped = False  # too slow: to be closed with SLOW_CONSUMER
        self.gone = False  # the peer went away
        self.task: asyncio.Task[Any] | None = None  # the connection task, while it writes

    def push(self, text: str, limit: int) -> bool:
        """Queue `text`; True when this push found the outbox full and dropped the client."""
        if self.dropped or self.gone:
            return False
        full = len(self.outbox) >= limit
        if full:
            self.dropped = True
            self.outbox.clear()
            if self.waiter is None and self.task is not None:
                self.task.cancel()  # stuck writing to a reader that does not read: stop it
        else:
            self.outbox.append(text)
        self.last_push = time.monotonic()
        self.wake()
        return full

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
        self.clients: set[Client] = set()
        self.fetch: Fetch | None = None  # a publisher view's reader (source=)
        self._snapshot_text: str | None = None
        self._heartbeat_text: str | None = None

    def message(self, kind: str, rates: dict[str, str]) -> str:
        body: dict[str, Any] = {"type": kind, "sequence": self.sequence, "base": self.base, "date": self.day}
        body["rates"] = rates
        if self.source is not None:
            body["source"] = self.source
        return encode(body)

    def snapshot_text(self) -> str:
        if self._snapshot_text is None:
            self._snapshot_text = self.message("snapshot", self.sent)
        return self._snapshot_text

    def heartbeat_text(self) -> str:
        if self._heartbeat_text is None:
            self._heartbeat_text = encode({"type": "heartbeat", "sequence": self.sequence})
        return self._heartbeat_text

    def advance(self, sequence: int, current: dict[str, str], day: str | None, resync: bool) -> str | None:
        """Take the view to `current`; the message its clients need (None: nothing changed)."""
        previous = self.sent
        self.sequence, self.sent, self.day = sequence, current, day
        self._snapshot_text = self._heartbeat_text = None
        if resync or previous.keys() - current.keys():
            # The upstream view was replaced or a currency is gone: an update cannot say
            # "removed", so the whole view is sent again.
            return self.snapshot_text()
        fresh = {k: v for k, v in current.items() if previous.get(k) != v}
        return self.message("update", fresh) if fresh else None


class Broadcaster:
    """Follows one LiveSnapshot and feeds every /ws/rates/stream client of this process."""

    def __init__(self, snapshot: LiveSnapshot, heartbeat_seconds: float, limit: int) -> None:
        self.snapshot = snapshot
        self.heartbeat_seconds = heartbeat_seconds
        self.limit = max(1, limit)
        self.views: dict[ViewKey, View] = {}
        self.clients = 0
        self.peak = 0
        self.dropped = 0  # slow consumers dropped since start
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the broadcasting task runs (it stops when the last client has left)."""
        return self._task is not None

    # -- joining and leaving

    def join_existing(self, key: ViewKey) -> Client | None:
        """Join a view that already has clients (None when there is none)."""
        view = self.views.get(key)
        return None if view is None else self._join(view)

    def join_blend(self, base: str, symbols: list[str] | None) -> Client:
        key: ViewKey = (base, tuple(symbols) if symbols is not None else None, None)
        view = self.views.get(key)
        if view is None:
            snapshot = self.snapshot
            day = snapshot.day.isoformat() if snapshot.day else None
            view = self.views[key] = View(key, blend_values(snapshot, base, symbols), day, snapshot.sequence)
        return self._join(view)

    def join_publisher(self, key: ViewKey, first: dict[str, str], day: str, fetch: Fetch) -> Client:
        """Join a publisher's view; `first` (just read upstream) seeds it when it is new."""
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = View(key, first, day, self.snapshot.sequence)
            view.fetch = fetch
        return self._join(view)

    def _join(self, view: View) -> Client:
        client = Client(view)
        view.clients.add(client)
        self.clients += 1
        self.peak = max(self.peak, self.clients)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ws-broadcast")
        return client

    def leave(self, client: Client) -> None:
        client.gone = True
        client.outbox.clear()
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
                        self._heartbeats()
                        continue
                    resync = first.resync
                    while not listener.queue.empty():
                        resync = listener.queue.get_nowait().resync or resync
                    if listener.overflowed:  # this task fell behind: every view is sent whole
                        listener.overflowed, resync = False, True
                    await self._changed(resync)
                    self._heartbeats()
        except Exception:
            log.exception("WebSocket broadcaster failed; its clients are closed")
            for view in list(self.views.values()):
                for client in list(view.clients):
                    client.gone = True
                    client.wake()
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
            text = view.advance(sequence, blend_values(snapshot, view.base, view.symbols), day, resync)
            if text is not None:
                messages.append((view, text))
        for view, text in messages:
            await self._push(view, text)
        if publishers:
            await asyncio.gather(*(self._refresh(view, sequence, resync) for view in publishers))

    async def _refresh(self, view: View, sequence: int, resync: bool) -> None:
        assert view.fetch is not None
        try:
            current, day = await view.fetch(view.base, view.symbols)
        except Exception as exc:  # read again on the next change; the clients keep what they have
            log.info("publisher view not refreshed", extra={"source": view.source, "error": repr(exc)})
            return
        text = view.advance(sequence, current, day, resync)
        if text is not None and self.views.get(view.key) is view:
            await self._push(view, text)

    async def _push(self, view: View, text: str) -> None:
        """Queue `text` for every client of `view`, yielding to the loop every CHUNK clients
        so that their writes (and HTTP requests) run between chunks, not after all of them."""
        limit = self.limit
        clients = list(view.clients)
        for start in range(0, len(clients), CHUNK):
            if start:
                await asyncio.sleep(0)
            for client in clients[start : start + CHUNK]:
                if client.push(text, limit):
                    self.dropped += 1

    def _heartbeats(self) -> None:
        due = time.monotonic() - self.heartbeat_seconds
        for view in self.views.values():
            text: str | None = None
            for client in view.clients:
                if client.last_push <= due:
                    text = text or view.heartbeat_text()
                    if client.push(text, self.limit):
                        self.dropped += 1

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
