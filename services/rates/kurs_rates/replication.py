"""Redis replication of accepted updates across rates replicas (redis.asyncio).

This is not a subscriber fan-out: it carries each update to every replica's `LatestRates`, which
hands it to its own StreamRates subscribers through kurs_common.fanout (in-process queues).

Keys (all under a configurable prefix, default "kurs:rates:"):

* ``{p}seq``     INCR counter: the global sequence of accepted updates.
* ``{p}stream``  Redis Stream, one entry per update, entry id ``<sequence>-0``, trimmed to about
  `stream_maxlen` entries (the replay window a restarted replica can still read).
* ``{p}latest``  Hash currency -> JSON of the newest effective rate (written with every update).

One Lua script does INCR + XADD + HSET atomically, so sequence numbers and stream order agree
across any number of replicas. Every replica (the ingesting one included) reads the stream and
applies each update to its in-process LatestRates, so every StreamRates subscriber anywhere sees
every update, numbered with the global sequence.

When Redis is unreachable the ingesting replica applies its updates locally, each under the next
local number (its own subscribers still get them, and a resume on it is exact), and keeps one
coalesced pending update (the newest reference set and the newest tick per currency: bounded by
the number of currencies), published as soon as Redis answers. That publication is numbered
above every local number (the script's floor), so the replica's own stream goes on without a gap
or a repeat; the local numbers are then sealed (a resume from one of them gets a fresh snapshot:
another replica may have used the same numbers for other changes). A replica that finds global
entries it never applied (numbered inside its local range, or trimmed away) resyncs: it raises
the global counter to above its own number first, then reads the shared latest hash, so the fresh
snapshot it sends its subscribers is numbered above anything they saw and nothing published
later can take a number at or below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kurs_rates.book import ChangeSet, LatestRates
from kurs_rates.model import Rate, RateKind

log = logging.getLogger(__name__)

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'u', ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
return seq
"""

# Raise the counter to at least ARGV[1] and return it: numbers at or below are never issued again.
_RAISE = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if seq < floor then
  seq = floor
  redis.call('SET', KEYS[1], seq)
end
return seq
"""


async def _aw(value: Any) -> Any:
    """redis-py's async client is typed as `X | Awaitable[X]`; every call here is awaitable."""
    return await cast(Awaitable[Any], value)


def rate_to_json(rate: Rate) -> dict[str, Any]:
    return {
        "source": rate.source,
        "kind": rate.kind.value,
        "currency": rate.currency,
        "value": rate.value,
        "day": rate.day.isoformat(),
        "observed_at": rate.observed_at.isoformat(),
        "sources": list(rate.sources),
        "replay": rate.replay,
    }


def rate_from_json(data: dict[str, Any]) -> Rate:
    return Rate(
        source=str(data["source"]),
        kind=RateKind(data["kind"]),
        currency=str(data["currency"]),
        value=str(data["value"]),
        day=dt.date.fromisoformat(data["day"]),
        observed_at=dt.datetime.fromisoformat(data["observed_at"]),
        sources=tuple(data["sources"]),
        replay=bool(data["replay"]),
    )


@dataclass(frozen=True, slots=True)
class Update:
    """What every replica applies: the new reference set (or None) and live ticks."""

    reference: tuple[Rate, ...] | None
    ticks: tuple[Rate, ...]
    changed: tuple[Rate, ...] = ()  # effective rates it changed, as seen by the publisher
    # A pending update published after an outage: the global sequence its publisher had applied
    # (the numbers between it and this update were the publisher's local ones, all merged here).
    after: int = 0

    def encode(self) -> str:
        return json.dumps(
            {
                "reference": None if self.reference is None else [rate_to_json(r) for r in self.reference],
                "ticks": [rate_to_json(r) for r in self.ticks],
                "changed": [rate_to_json(r) for r in self.changed],
                "after": self.after,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str | bytes) -> Update:
        data = json.loads(text)
        ref = data.get("reference")
        return cls(
            None if ref is None else tuple(rate_from_json(r) for r in ref),
            tuple(rate_from_json(r) for r in data.get("ticks", ())),
            tuple(rate_from_json(r) for r in data.get("changed", ())),
            int(data.get("after", 0)),
        )


class RedisReplication:
    """Publishes this replica's updates to Redis and applies every replica's updates to `book`."""

    def __init__(
        self,
        url: str,
        book: LatestRates,
        *,
        prefix: str = "kurs:rates:",
        stream_maxlen: int = 10_000,
        timeout: float = 2.0,
    ) -> None:
        self.book = book
        self.prefix = prefix
        self.stream_maxlen = stream_maxlen
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            decode_responses=True,
        )
        self.seq_key = f"{prefix}seq"
        self.stream_key = f"{prefix}stream"
        self.latest_key = f"{prefix}latest"
        self.healthy = False
        self.last_error = ""
        self._script = self.client.register_script(_PUBLISH)
        self._raise = self.client.register_script(_RAISE)
        # The newest global sequence applied from the stream (the book's may be above it: local
        # numbers given while Redis was unreachable).
        self.cursor = 0
        self._pending_reference: tuple[Rate, ...] | None = None
        self._pending_ticks: dict[str, Rate] = {}
        self._task: asyncio.Task[None] | None = None
        self._publish_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Join the stream at its current end (loading its tail into the replay ring) and consume."""
        try:
            await self._seed()
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
        self._task = asyncio.create_task(self._consume(), name="rates-redis-consumer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.aclose()

    async def _seed(self) -> None:
        snapshot: dict[str, str] = await _aw(self.client.hgetall(self.latest_key))
        self.book.merge_snapshot(rate_from_json(json.loads(v)) for v in snapshot.values())
        seq = int(await _aw(self.client.get(self.seq_key)) or 0)
        window = self.book.replay_window
        entries: list[tuple[str, dict[str, str]]] = []
        if window:
            entries = await _aw(self.client.xrevrange(self.stream_key, count=window)) or []
        history = []
        for entry_id, fields in reversed(entries):
            update = Update.decode(fields["u"])
            history.append(ChangeSet(_sequence_of(entry_id), update.changed))
        if history:
            seq = max(seq, history[-1].sequence)
        self.book.seed(seq, history)
        self.cursor = seq
        self._up()

    # -- publishing ----------------------------------------------------------------------
    def _floor(self) -> int:
        return self.book.sequence

    async def publish(self, update: Update) -> int:
        """Publish through Redis and return the global sequence; raises on Redis errors."""
        async with self._publish_lock:
            latest_pairs: list[str] = []
            for rate in update.changed:
                latest_pairs += [rate.currency, json.dumps(rate_to_json(rate), separators=(",", ":"))]
            seq = await self._script(
                keys=[self.seq_key, self.stream_key, self.latest_key],
                args=[self._floor(), self.stream_maxlen, update.encode(), *latest_pairs],
            )
            return int(seq)

    def defer(self, update: Update) -> None:
        """Keep an update that could not be published; it is merged into one pending update."""
        if update.reference is not None:
            day = max((r.day for r in update.reference), default=None)
            pending_day = max((r.day for r in self._pending_reference or ()), default=None)
            if pending_day is None or (day is not None and day >= pending_day):
                self._pending_reference = update.reference
        for tick in update.ticks:
            current = self._pending_ticks.get(tick.currency)
            if current is None or tick.observed_at >= current.observed_at:
                self._pending_ticks[tick.currency] = tick

    @property
    def pending(self) -> bool:
        return self._pending_reference is not None or bool(self._pending_ticks)

    async def _flush_pending(self) -> None:
        if not self.pending:
            return
        # Take the pending update out first: ingests deferring meanwhile start a new one.
        reference, ticks = self._pending_reference, tuple(self._pending_ticks.values())
        self._pending_reference, self._pending_ticks = None, {}
        effective = self.book.effective()
        changed = tuple(
            r
            for r in (*(reference or ()), *ticks)
            if (cur := effective.get(r.currency)) is not None and cur.observed_at == r.observed_at
        )
        local_top = self.book.sequence  # every local number is at or below it
        try:
            sequence = await self.publish(Update(reference, ticks, changed, after=self.cursor))
        except BaseException:
            self.defer(Update(reference, ticks))  # merged with anything deferred meanwhile
            raise
        self.book.seal(local_top)
        log.info(
            "redis: pending update published",
            extra={"ticks": len(ticks), "sequence": sequence, "local_top": local_top},
        )

    # -- consuming -----------------------------------------------------------------------
    async def _consume(self) -> None:
        delay = 0.1
        while True:
            try:
                if not self.healthy:
                    # Drop pooled connections from before the outage: their next use would fail
                    # and send an update down the local path for nothing.
                    await self.client.connection_pool.disconnect(inuse_connections=False)
                    await _aw(self.client.ping())
                    self._up()
                await self._flush_pending()
                answer: list[tuple[str, list[tuple[str, dict[str, str]]]]] = await _aw(
                    self.client.xread({self.stream_key: f"{self.cursor}-0"}, count=500, block=500)
                )
                delay = 0.1
                for _stream, entries in answer or ():
                    gap = self._apply(entries)
                    if gap:
                        await self._resync(gap)
                        break
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                self.mark_down(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:  # a bad entry must not stop the fan-out
                log.exception("redis consumer: unexpected error")
                await asyncio.sleep(delay)

    def _apply(self, entries: Iterable[tuple[str, dict[str, str]]]) -> int:
        """Apply stream entries in order; return the sequence at which a gap was seen (else 0)."""
        for entry_id, fields in entries:
            seq = _sequence_of(entry_id)
            if seq <= self.cursor:
                continue
            update = Update.decode(fields["u"])
            # The outage flush of a replica that was where we are: the numbers in between were
            # its local ones, and everything they changed is merged into this update.
            caught_up = update.after == self.cursor == self.book.sequence and seq > self.cursor
            if seq != self.book.sequence + 1 and not caught_up:
                # At or below our own number: another replica's update numbered while we numbered
                # locally (Redis was unreachable from here). Above the next one: entries were
                # trimmed before we read them, or Redis lost its data. Either way: resync.
                return seq
            self.book.apply(update.reference, update.ticks, sequence=seq)
            self.cursor = seq
        return 0

    async def _resync(self, seq: int) -> None:
        log.warning(
            "redis: updates missed, resyncing from the shared snapshot",
            extra={"at": self.book.sequence, "next": seq},
        )
        # Raise the counter first: everything published before it is in the hash read next, and
        # everything published after it is numbered above the snapshot.
        top = int(await self._raise(keys=[self.seq_key], args=[self.book.sequence + 1]))
        snapshot: dict[str, str] = await _aw(self.client.hgetall(self.latest_key))
        self.book.resync((rate_from_json(json.loads(v)) for v in snapshot.values()), top)
        if self.book.sequence > top:  # a local number was given meanwhile: keep the counter above it
            await self._raise(keys=[self.seq_key], args=[self.book.sequence])
        self.cursor = self.book.sequence

    def _up(self) -> None:
        if not self.healthy:
            log.info("redis reachable", extra={"prefix": self.prefix})
        self.healthy = True
        self.last_error = ""

    def mark_down(self, exc: BaseException) -> None:
        """Redis failed (here or in the ingest path): degrade to local numbering until it is back."""
        if self.healthy or not self.last_error:
            log.warning(
                "redis unreachable: fan-out degraded", extra={"error": f"{type(exc).__name__}: {exc}"}
            )
        self.healthy = False
        self.last_error = f"{type(exc).__name__}: {exc}"


def _sequence_of(entry_id: str | bytes) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])
