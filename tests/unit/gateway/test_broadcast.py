"""The WebSocket broadcaster: one encoding per view, bounded outboxes, idle again after leaving."""

from __future__ import annotations

import asyncio
import sys

import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from kurs.rates.v1 import rates_pb2
from kurs_gateway.broadcast import Broadcaster, Client, Outgoing
from kurs_gateway.snapshot import LiveSnapshot
from support.fake_exchanges import wait_until


def join(hub: Broadcaster, base: str, symbols: list[str] | None) -> Client:
    """An ASGI-route client of the blended view (base, symbols), as routes/stream.py joins one."""
    return hub.attach(Client(hub.blend_view(base, symbols)))


def rate(code: str, value: str, day: str = "2026-10-30") -> rates_pb2.Rate:
    return rates_pb2.Rate(
        currency=code, value=value, date=day, observed_at=Timestamp(seconds=1), sources=["ecb"]
    )


def live() -> LiveSnapshot:
    snap = LiveSnapshot()
    snap.replace(1, [rate("USD", "1.1"), rate("GBP", "0.8"), rate("JPY", "170")])
    return snap


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def next_message(client: Client) -> dict[str, object]:
    text = await asyncio.wait_for(client.next(), timeout=2)
    assert text is not None
    message: dict[str, object] = orjson.loads(text)
    return message


async def test_each_message_is_encoded_once_per_view() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=60, limit=8)
    a, b = join(hub, "EUR", ["USD", "GBP"]), join(hub, "EUR", ["USD", "GBP"])
    other = join(hub, "USD", ["GBP"])
    assert a.view is b.view
    assert other.view is not a.view
    assert orjson.loads(a.view.snapshot_message().text)["rates"] == {"USD": "1.1", "GBP": "0.8"}
    await settle()
    snap.update(2, [rate("USD", "1.2")])
    first, second = await asyncio.wait_for(a.next(), 2), await asyncio.wait_for(b.next(), 2)
    assert first is second  # the same str object: encoded once for the view
    assert orjson.loads(first or "") == {
        "type": "update",
        "sequence": 2,
        "base": "EUR",
        "date": "2026-10-30",
        "rates": {"USD": "1.2"},
    }
    assert (await next_message(other))["rates"] == {"GBP": "0.6666666667"}
    for client in (a, b, other):
        hub.leave(client)


async def test_a_client_joining_later_gets_the_views_current_state() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=60, limit=8)
    first = join(hub, "EUR", ["USD"])
    await settle()
    snap.update(2, [rate("USD", "1.3")])
    assert (await next_message(first))["rates"] == {"USD": "1.3"}
    later = join(hub, "EUR", ["USD"])
    assert orjson.loads(later.view.snapshot_message().text) == {
        "type": "snapshot",
        "sequence": 2,
        "base": "EUR",
        "date": "2026-10-30",
        "rates": {"USD": "1.3"},
    }
    hub.leave(first)
    hub.leave(later)


async def test_a_slow_consumer_is_dropped_while_a_fast_one_keeps_receiving() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=60, limit=3)
    slow, fast = join(hub, "EUR", ["USD"]), join(hub, "EUR", ["USD"])
    await settle()
    seen = []
    for i in range(6):
        snap.update(2 + i, [rate("USD", f"1.{20 + i}")])
        seen.append((await next_message(fast))["rates"])
    assert seen == [{"USD": f"1.{20 + i}"} for i in range(6)]
    assert slow.dropped
    assert not fast.dropped
    assert not slow.outbox  # what it had queued is released at once
    assert await slow.next() is None  # its connection task stops and closes with SLOW_CONSUMER
    assert hub.dropped == 1
    hub.leave(slow)
    hub.leave(fast)


async def test_a_consumer_stuck_in_a_write_is_cancelled_when_dropped() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=60, limit=2)
    stuck = join(hub, "EUR", ["USD"])
    blocked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stuck.task = asyncio.create_task(asyncio.wait_for(blocked, timeout=30))  # a write that never ends
    await settle()
    for i in range(3):
        snap.update(2 + i, [rate("USD", f"1.{30 + i}")])
        await settle()
    assert stuck.dropped
    await asyncio.sleep(0)
    assert stuck.task.cancelled()
    hub.leave(stuck)


async def test_idle_clients_get_the_views_heartbeat() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=0.2, limit=8)
    client = join(hub, "EUR", ["USD"])
    assert await next_message(client) == {"type": "heartbeat", "sequence": 1}
    hub.leave(client)


async def test_every_client_leaving_returns_the_broadcaster_to_idle() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=0.2, limit=8)
    clients = [join(hub, "EUR", ["USD"] if i % 2 else None) for i in range(600)]
    assert hub.clients == 600
    assert len(hub.views) == 2
    await settle()
    snap.update(2, [rate("USD", "1.4")])
    # 600 appends: a few chunks with yields in between (more of them on a busy machine).
    await wait_until(lambda: all(len(c.outbox) == 1 for c in clients), limit=5.0)
    for client in clients:
        hub.leave(client)
    assert hub.clients == 0
    assert not hub.views
    assert all(not c.outbox for c in clients)
    await wait_until(lambda: not hub.running, limit=5.0)  # it ends within a tick (heartbeat / 4)
    assert hub.peak == 0  # memory handed back after the crowd left (gc + malloc_trim)


async def test_a_change_before_the_broadcaster_starts_still_reaches_the_first_client() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=60, limit=8)
    client = join(hub, "EUR", ["USD"])  # the broadcasting task is created, not yet running
    snap.update(2, [rate("USD", "1.5")])  # lands before it subscribes to the snapshot
    assert await next_message(client) == {
        "type": "update",
        "sequence": 2,
        "base": "EUR",
        "date": "2026-10-30",
        "rates": {"USD": "1.5"},
    }
    hub.leave(client)


async def test_heartbeats_to_a_crowd_yield_to_the_loop_between_chunks() -> None:
    snap = live()
    hub = Broadcaster(snap, heartbeat_seconds=0.2, limit=8)
    clients = [join(hub, "EUR", ["USD"]) for _ in range(1000)]  # all fall due together
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(sum(1 for c in clients if c.outbox))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    for _ in range(200):
        if all(c.outbox for c in clients):
            break
        await asyncio.sleep(0.01)
    watcher.cancel()
    assert all(c.outbox for c in clients)
    assert any(0 < n < 1000 for n in seen)  # other tasks ran while the heartbeats were handed out
    for client in clients:
        hub.leave(client)


class Recording(Client):
    """A client that notes the GIL switch interval at each push."""

    seen: list[float] = []

    def push(self, message: Outgoing, limit: int, now: float) -> bool:
        self.seen.append(sys.getswitchinterval())
        return super().push(message, limit, now)


async def test_the_gil_switch_interval_is_short_only_while_messages_are_written() -> None:
    snap = live()
    usual = sys.getswitchinterval()
    hub = Broadcaster(snap, heartbeat_seconds=60, limit=8, switch=0.0001)
    view = hub.blend_view("EUR", ["USD"])
    clients = [hub.attach(Recording(view)) for _ in range(600)]
    await settle()
    snap.update(2, [rate("USD", "1.6")])
    for _ in range(100):
        if all(c.outbox for c in clients):
            break
        await asyncio.sleep(0.01)
    assert Recording.seen == pytest.approx([0.0001] * 600)  # across the chunks and their yields
    assert sys.getswitchinterval() == usual
    for client in clients:
        hub.leave(client)
