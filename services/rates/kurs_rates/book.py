"""The latest snapshot held in memory, and the fan-out of its changes to subscribers.

The effective rate of a currency is the newer (by observation time) of the newest reference
fixing and the newest live tick. Every batch that changes at least one effective rate gets the
next sequence number and is published to every subscriber.

Sequence numbers are local (embedded mode, or Redis unreachable: +1 per change set) or global
(with Redis: the number the Redis stream assigned, passed to `apply`). Either way every change
set gets a number above the previous one: never a repeat, never a change under an old number.
A process starts numbering at `start_at` (the server passes the wall clock in milliseconds when no
global counter is known), so a restarted replica does not reuse the numbers of its previous run.

The last REPLAY_WINDOW change sets are kept in a ring so a reconnecting subscriber
(StreamRatesRequest.since_sequence) is told exactly what it missed; a sequence outside what the
ring answers exactly (too old, never issued here, numbered locally while Redis was away and then
sealed, or before a resync) gets a fresh snapshot instead: never a partial update.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kurs_common.fanout import Fanout, Subscription
from kurs_rates.model import Rate, RateKind

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 256
REPLAY_WINDOW = 1024


@dataclass(frozen=True, slots=True)
class ChangeSet:
    sequence: int
    rates: tuple[Rate, ...]  # the new effective rates of the currencies that changed


class LatestRates:
    """The newest reference and live rate of every currency, in memory, with the sequence of changes."""

    def __init__(self, replay_window: int = REPLAY_WINDOW) -> None:
        self.reference: dict[str, Rate] = {}
        self.live: dict[str, Rate] = {}
        self.sequence = 0
        self._fanout: Fanout[ChangeSet] = Fanout(SUBSCRIBER_QUEUE)
        self._ring: deque[ChangeSet] = deque(maxlen=replay_window)
        # Every change set with a sequence above this is in the ring.
        self._complete_after = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        # Called whenever the reference set is replaced (e.g. to drop cached currency ranges).
        self.on_reference_change: list[Callable[[], None]] = []
        # Bumped on every change of `reference` or `live`; read-side caches key on it.
        self.version = 0
        self._effective: tuple[int, dict[str, Rate]] = (-1, {})

    # -- reads ---------------------------------------------------------------------------
    def effective(self) -> dict[str, Rate]:
        """The effective rate per currency (memoized per version; callers must not mutate it)."""
        version, cached = self._effective
        if version != self.version:
            cached = _effective(self.reference, self.live)
            self._effective = (self.version, cached)
        return cached

    @property
    def reference_day(self) -> dt.date | None:
        return max((r.day for r in self.reference.values()), default=None)

    @property
    def replay_window(self) -> int:
        return self._ring.maxlen or 0

    def since(self, sequence: int) -> list[ChangeSet] | None:
        """The change sets after `sequence`, or None when they are no longer (or never were) known."""
        if sequence > self.sequence or sequence < self._complete_after:
            return None
        return [c for c in self._ring if c.sequence > sequence]

    # -- writes --------------------------------------------------------------------------
    def load(self, reference: Iterable[Rate], live: Iterable[Rate]) -> None:
        self.version += 1
        self.reference = {r.currency: r for r in reference}
        self.live = {r.currency: r for r in live}
        self._complete_after = self.sequence

    def start_at(self, sequence: int) -> None:
        """Number the next change set after `sequence` (a floor; never moves the sequence back)."""
        if sequence > self.sequence:
            self.sequence = sequence
            self._complete_after = max(self._complete_after, sequence)

    def seal(self, sequence: int) -> None:
        """Change sets up to `sequence` were numbered locally (Redis unreachable) and another
        replica may have issued the same numbers for other changes: a resume from any of them is
        answered with a fresh snapshot, never with a replay that could be someone else's."""
        self._complete_after = max(self._complete_after, sequence + 1)

    def seed(self, sequence: int, history: Iterable[ChangeSet]) -> None:
        """Start at a global `sequence`; `history` (ascending, contiguous) fills the replay ring."""
        self.sequence = max(self.sequence, sequence)
        self._ring.clear()
        for change in history:
            self._ring.append(change)
        self._complete_after = self._ring[0].sequence - 1 if self._ring else self.sequence
        self._notify()

    def resync(self, rates: Iterable[Rate], sequence: int) -> None:
        """Updates were lost (a gap in the global sequence): take a shared snapshot, jump to
        `sequence` (above the current one), forget the replay history and send every subscriber a
        fresh snapshot."""
        self.merge_snapshot(rates)
        self.sequence = max(self.sequence + 1, sequence)
        self._ring.clear()
        self._complete_after = self.sequence
        self._fanout.mark_all_overflowed()
        self._fanout.publish(ChangeSet(self.sequence, ()))
        self._notify()

    def merge_snapshot(self, rates: Iterable[Rate]) -> None:
        """Take entries of a shared snapshot that are newer than what is held (no publication)."""
        self.version += 1
        day = self.reference_day
        for rate in rates:
            if rate.kind is RateKind.LIVE:
                current = self.live.get(rate.currency)
                if current is None or rate.observed_at > current.observed_at:
                    self.live[rate.currency] = rate
            elif day is None or rate.day > day:
                self.reference[rate.currency] = rate

    def _next(
        self, latest_reference: Iterable[Rate] | None, ticks: Iterable[Rate]
    ) -> tuple[dict[str, Rate], dict[str, Rate]]:
        reference = self.reference
        if latest_reference is not None:
            candidate = {r.currency: r for r in latest_reference}
            new_day = max((r.day for r in candidate.values()), default=None)
            current_day = self.reference_day
            # Never go back to an older fixing day (a late or replayed publication).
            if new_day is not None and (current_day is None or new_day >= current_day):
                reference = candidate
        live = dict(self.live)
        for tick in ticks:
            if tick.kind is not RateKind.LIVE:
                continue
            current = live.get(tick.currency)
            if current is None or tick.observed_at >= current.observed_at:
                live[tick.currency] = tick
        return reference, live

    def preview(self, latest_reference: Iterable[Rate] | None, ticks: Iterable[Rate]) -> tuple[Rate, ...]:
        """The effective rates `apply` would change, without changing anything."""
        reference, live = self._next(latest_reference, ticks)
        return _diff(self.effective(), _effective(reference, live))

    def apply(
        self,
        latest_reference: Iterable[Rate] | None,
        ticks: Iterable[Rate],
        *,
        sequence: int | None = None,
    ) -> ChangeSet | None:
        """Replace the reference part (when given and not older) and merge live ticks.

        sequence: the global number of this update (Redis mode); None numbers it locally (the
        next number: embedded mode, or Redis unreachable), kept for replay like any other.
        """
        before = self.effective()
        old_reference = self.reference
        self.reference, self.live = self._next(latest_reference, ticks)
        self.version += 1
        if self.reference is not old_reference:
            for listener in self.on_reference_change:
                listener()
        after = self.effective()
        changed = _diff(before, after)
        removed = before.keys() - after.keys()
        if sequence is not None:
            self.sequence = max(self.sequence, sequence)
        if not changed and not removed:
            self._notify()
            return None
        if sequence is None:
            self.sequence += 1
        change = ChangeSet(sequence if sequence is not None else self.sequence, changed)
        if self._ring.maxlen is not None and len(self._ring) == self._ring.maxlen:
            self._complete_after = max(self._complete_after, self._ring[0].sequence)
        self._ring.append(change)
        self._fanout.publish(change)
        self._notify()
        return change

    def _notify(self) -> None:
        for waiter in [w for w in self._waiters if w[0] <= self.sequence]:
            self._waiters.remove(waiter)
            if not waiter[1].done():
                waiter[1].set_result(None)

    async def wait_for(self, sequence: int, seconds: float) -> bool:
        """Wait until the book has applied `sequence` (read-your-writes for the ingesting replica)."""
        if self.sequence >= sequence:
            return True
        waiter = (sequence, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter[1], seconds)
        except TimeoutError:
            return False
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return True

    # -- subscriptions -------------------------------------------------------------------
    def subscribe(self) -> contextlib.AbstractContextManager[Subscription[ChangeSet]]:
        return self._fanout.subscribe()


def _effective(reference: dict[str, Rate], live: dict[str, Rate]) -> dict[str, Rate]:
    out = dict(reference)
    for code, tick in live.items():
        ref = out.get(code)
        if ref is None or tick.observed_at > ref.observed_at:
            out[code] = tick
    return out


def _diff(before: dict[str, Rate], after: dict[str, Rate]) -> tuple[Rate, ...]:
    return tuple(
        rate
        for code, rate in sorted(after.items())
        if (old := before.get(code)) is None
        or old.value != rate.value
        or old.day != rate.day
        or old.observed_at != rate.observed_at
    )
