"""Every gateway's in-memory view of the keys, kept current by polling the store.

`check(presented)` answers from memory on the request path: a presented key is remembered by a
keyed digest (this process's random key) once its scrypt hash has been verified, so each
gateway pays the slow hash once per key. Revocations, expiries and new keys reach every gateway
within `refresh_seconds` (the store is polled for rows changed since the last poll, with an
overlap so a late commit is not missed); a key created a moment ago on another gateway is
looked up in the store directly on first sight. Static keys (KURS_GATEWAY_API_KEYS) are
accepted beside managed ones, with the scopes configured for them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from kurs_gateway.keys.meter import Limits
from kurs_gateway.keys.model import STATIC_SCOPES, KeyRecord, key_id_of, verify_key
from kurs_gateway.keys.store import KeyStore

log = logging.getLogger(__name__)

OVERLAP = dt.timedelta(seconds=60)
MAX_REMEMBERED = 100_000
MAX_REFUSED = 10_000
MAX_RECENT = 10_000
UNKNOWN = object()  # check(): not decided from memory; call verify()


@dataclass(frozen=True, slots=True)
class Principal:
    client: str  # what usage is counted under: a key id, or "static:<digest>"
    key_id: str | None  # a managed key's id
    name: str
    scopes: frozenset[str]
    limits: Limits
    expires: float = math.inf  # epoch seconds
    revoked: bool = False
    record: KeyRecord | None = None

    def usable(self, now: float) -> bool:
        return not self.revoked and now < self.expires


def static_client(key: str) -> str:
    return "static:" + hashlib.sha256(key.encode()).hexdigest()[:16]


class KeyRegistry:
    def __init__(
        self,
        store: KeyStore | None,
        static_keys: Iterable[str],
        default_limits: Limits,
        *,
        static_scopes: Iterable[str] = STATIC_SCOPES,
        refresh_seconds: float = 2.0,
        verify_concurrency: int = 4,
    ) -> None:
        self.store = store
        self.default_limits = default_limits
        self.refresh_seconds = refresh_seconds
        self._secret = secrets.token_bytes(32)
        self._entries: dict[str, Principal] = {}
        self._known: OrderedDict[bytes, str] = OrderedDict()  # digest -> key id (verified)
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self._absent: dict[str, float] = {}  # ids the store did not hold, and when asked
        self._verifying: dict[bytes, asyncio.Future[Principal | None]] = {}
        # Verified keys as presented (this process's memory only), to skip the digest.
        self._recent: dict[str, Principal | str] = {}
        self._static: dict[bytes, Principal] = {}
        self._verify_slots = asyncio.Semaphore(verify_concurrency)
        self._polled: dt.datetime | None = None
        scopes = frozenset(static_scopes)
        for i, key in enumerate(k for k in static_keys if k):
            self._static[self._digest(key)] = Principal(
                static_client(key), None, f"static key {i + 1}", scopes, default_limits
            )

    def _digest(self, key: str) -> bytes:
        return hashlib.blake2b(
            key.encode("utf-8", "surrogateescape"), key=self._secret, digest_size=16
        ).digest()

    @property
    def managed(self) -> bool:
        return self.store is not None

    # -- the request path ----------------------------------------------------------------------
    def check(self, presented: str) -> Principal | object | None:
        """The principal a key stands for, None if it is known to be wrong, else UNKNOWN."""
        recent = self._recent.get(presented)
        if recent is not None:  # the hot path: a key seen a moment ago
            return recent if isinstance(recent, Principal) else self._entries.get(recent)
        digest = self._digest(presented)
        static = self._static.get(digest)
        if static is not None:
            self._remember(presented, static)
            return static
        key_id = self._known.get(digest)
        if key_id is not None:
            self._remember(presented, key_id)
            return self._entries.get(key_id)
        if digest in self._refused or self.store is None:
            return None
        return UNKNOWN

    async def verify(self, presented: str) -> Principal | None:
        """The slow path: the key's record (read from the store if not yet seen) and its hash.
        Concurrent checks of one key share one verification."""
        result = self.check(presented)
        if result is not UNKNOWN:
            return result if isinstance(result, Principal) else None
        digest = self._digest(presented)
        pending = self._verifying.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(presented, digest))
            self._verifying[digest] = pending
            pending.add_done_callback(lambda _: self._verifying.pop(digest, None))
        return await asyncio.shield(pending)

    async def _verify(self, presented: str, digest: bytes) -> Principal | None:
        key_id = key_id_of(presented)
        if key_id is None:
            self._refuse(digest)
            return None
        entry = self._entries.get(key_id)
        if entry is None:
            try:
                found = await self._lookup(key_id)
            except Exception:  # the store is down: refuse now, but do not remember it
                log.warning("key store unavailable for a lookup", extra={"key_id": key_id})
                return None
            if not found:
                return None
            entry = self._entries.get(key_id)
        if entry is None or entry.record is None:
            return None
        async with self._verify_slots:
            ok = await asyncio.to_thread(verify_key, presented, entry.record.hash)
        if not ok:
            self._refuse(digest)
            return None
        self._known[digest] = entry.record.id
        if len(self._known) > MAX_REMEMBERED:
            self._known.popitem(last=False)
        return self._entries.get(entry.record.id)

    async def _lookup(self, key_id: str) -> bool:
        """Read one id from the store (a key created a moment ago on another gateway); an id the
        store does not hold is not asked for again within `refresh_seconds`."""
        assert self.store is not None
        now = time.monotonic()
        if now - self._absent.get(key_id, -math.inf) < self.refresh_seconds:
            return False
        record = await self.store.get(key_id)
        if record is None:
            if len(self._absent) > MAX_REFUSED:
                self._absent.clear()
            self._absent[key_id] = now
            return False
        self.apply(record)
        return True

    def _remember(self, presented: str, found: Principal | str) -> None:
        if len(self._recent) >= MAX_RECENT:
            self._recent.clear()
        self._recent[presented] = found

    def _refuse(self, digest: bytes) -> None:
        self._refused[digest] = None
        if len(self._refused) > MAX_REFUSED:
            self._refused.popitem(last=False)

    # -- keeping current -----------------------------------------------------------------------
    def limits_of(self, record: KeyRecord) -> Limits:
        d = self.default_limits
        return Limits(
            rate=d.rate if record.rate_per_second is None else record.rate_per_second,
            burst=record.burst if record.burst is not None else d.burst,
            per_day=record.quota_per_day,
            per_month=record.quota_per_month,
        )

    def apply(self, record: KeyRecord) -> None:
        expires = record.expires_at.timestamp() if record.expires_at is not None else math.inf
        self._entries[record.id] = Principal(
            record.id,
            record.id,
            record.name,
            record.scopes,
            self.limits_of(record),
            expires,
            record.revoked_at is not None,
            record,
        )

    async def load(self) -> None:
        if self.store is None:
            return
        started = dt.datetime.now(dt.UTC)
        for record in await self.store.all():
            self.apply(record)
        self._polled = started

    async def refresh(self) -> int:
        """Apply the rows changed since the last poll; returns how many."""
        if self.store is None:
            return 0
        if self._polled is None:
            await self.load()
            return len(self._entries)
        started = dt.datetime.now(dt.UTC)
        records = await self.store.changed_since(self._polled - OVERLAP)
        for record in records:
            self.apply(record)
        self._polled = started
        return len(records)

    async def run(self) -> None:
        """Poll forever (the app's lifespan runs and cancels this)."""
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving with the current view
                log.warning("key store poll failed; keeping the current keys", extra={"error": str(exc)})
