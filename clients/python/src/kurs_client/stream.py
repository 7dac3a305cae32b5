"""`stream_rates()`: a StreamRates subscription that survives disconnects and failover.

How the rates service answers a resume (StreamRatesRequest.since_sequence = the last sequence
seen): when the missed change sets are still in its replay window, one update carrying the
current value of everything that changed (coalesced, at the current sequence), or nothing when
nothing changed; when they are not (too far back, or this replica has not yet caught up to that
sequence), a fresh snapshot at its own sequence. Replicas sharing Redis number changes with one
global sequence, so a resume on another replica continues the same numbering.

`StreamView` keeps what the caller has been given and turns whatever arrives into events that
chain without gaps or duplicates:
* an update only carries rates whose value differs from the caller's view (a value already
  delivered is never delivered again), and a message with no such rate yields nothing;
* a snapshot after a reconnect is delivered as an update of what changed, unless a currency
  disappeared (then as a snapshot, which replaces the caller's view);
* a first message that is a snapshot *older* than the caller's view means the replica is behind:
  the stream is dropped and resumed again shortly (after RESYNC_ATTEMPTS tries it is accepted).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Sequence

from kurs_client.config import ClientConfig
from kurs_client.errors import UnavailableError
from kurs_client.models import Rate, RateEvent, StreamMessage
from kurs_client.pool import StreamRenewal, TransientError
from kurs_client.transport import Transport

log = logging.getLogger("kurs_client")
RESYNC_ATTEMPTS = 20


class ReplicaBehind(TransientError):
    """The endpoint's latest sequence is older than what the caller already has."""


class StreamView:
    def __init__(self, since: int = 0) -> None:
        self.sequence = since
        self.view: dict[str, Rate] | None = None  # None: unknown (a caller-given `since`, or new)
        self._fresh_connection = False
        self._connections = 0
        self._behind = 0

    def connected(self) -> None:
        """A new stream call begins (the first, or a resume)."""
        self._connections += 1
        self._fresh_connection = True

    def accept(self, message: StreamMessage, endpoint: str) -> RateEvent | None:
        resumed = self._fresh_connection and self._connections > 1
        self._fresh_connection = False
        previous = self.sequence
        if message.kind == "snapshot":
            if self.sequence and message.sequence < self.sequence and self._behind < RESYNC_ATTEMPTS:
                self._behind += 1
                raise ReplicaBehind(f"snapshot at {message.sequence}, caller at {self.sequence}")
            self._behind = 0
            if self.view is None or self.view.keys() - message.rates.keys():
                self.view = dict(message.rates)
                self.sequence = message.sequence
                return RateEvent(
                    "snapshot", message.sequence, previous, message.base, message.date,
                    dict(message.rates), endpoint, resumed,
                )  # fmt: skip
            changed = {c: r for c, r in message.rates.items() if _differs(self.view.get(c), r)}
        else:
            if message.sequence <= self.sequence and self.view is not None:
                return None  # already covered by what the caller has
            changed = {c: r for c, r in message.rates.items() if _differs((self.view or {}).get(c), r)}
        self._behind = 0
        if self.view is not None:
            self.view.update(changed)
        self.sequence = max(self.sequence, message.sequence)
        if not changed:
            return None
        return RateEvent(
            "update", self.sequence, previous, message.base, message.date, changed, endpoint, resumed
        )


def _differs(held: Rate | None, new: Rate) -> bool:
    return held is None or held.value != new.value


async def resumable_stream(
    transport: Transport, config: ClientConfig, base: str, symbols: Sequence[str], since: int = 0
) -> AsyncGenerator[RateEvent, None]:
    """Events of StreamRates on the first healthy endpoint, resumed elsewhere on any failure."""
    view = StreamView(since)
    loop = asyncio.get_running_loop()
    backoff = config.reconnect_initial
    disconnected_since: float | None = None
    while True:
        deadline = loop.time() + config.timeout
        endpoint = await transport.pool.pick(set(), deadline)
        limit = config.max_disconnected
        if disconnected_since is not None and limit is not None and loop.time() - disconnected_since > limit:
            raise UnavailableError(f"no endpoint kept a stream open for {config.max_disconnected}s")
        if endpoint is None:
            disconnected_since = disconnected_since or loop.time()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, config.reconnect_max)
            continue
        view.connected()
        try:
            async for message in transport.stream(
                endpoint, base, symbols, view.sequence, config.stream_deadline
            ):
                event = view.accept(message, endpoint.address)
                disconnected_since, backoff = None, config.reconnect_initial
                transport.pool.mark_up(endpoint)
                if event is not None:
                    yield event
        except StreamRenewal:
            continue  # the stream's own deadline: resume at once on the same endpoint
        except ReplicaBehind as exc:
            log.info("kurs stream: replica behind, resuming again", extra={"reason": str(exc)})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, config.reconnect_max)
        except TransientError as exc:
            transport.pool.mark_down(endpoint, str(exc))
            disconnected_since = disconnected_since or loop.time()
            await asyncio.sleep(config.reconnect_initial * random.random())
