"""Creating, listing and revoking keys: shared by the CLI and the admin REST API."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from kurs_gateway.keys.model import KeyFieldError, KeyRecord, check_name, hash_key, new_key, parse_scopes
from kurs_gateway.keys.store import KeyStore

MAX_QUOTA = 10**12


@dataclass(frozen=True, slots=True)
class NewKey:
    name: str
    scopes: frozenset[str]
    owner: str = ""
    quota_per_day: int | None = None
    quota_per_month: int | None = None
    rate_per_second: float | None = None
    burst: int | None = None
    expires_at: dt.datetime | None = None


def checked(
    *,
    name: str,
    scopes: str | list[str],
    owner: str = "",
    quota_per_day: int | None = None,
    quota_per_month: int | None = None,
    rate_per_second: float | None = None,
    burst: int | None = None,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> NewKey:
    """Validate a request for a key; KeyFieldError names the first field that is wrong."""
    now = now or dt.datetime.now(dt.UTC)
    for field_name, value in (("quota_per_day", quota_per_day), ("quota_per_month", quota_per_month)):
        if value is not None and not 1 <= value <= MAX_QUOTA:
            raise KeyFieldError(field_name, f"between 1 and {MAX_QUOTA}")
    if rate_per_second is not None and not 0 < rate_per_second <= 1_000_000:
        raise KeyFieldError("rate_per_second", "greater than 0 and at most 1000000")
    if burst is not None and not 1 <= burst <= 1_000_000:
        raise KeyFieldError("burst", "between 1 and 1000000")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise KeyFieldError("expires_at", "needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        if expires_at <= now:
            raise KeyFieldError("expires_at", "must be in the future")
    return NewKey(
        name=check_name(name),
        scopes=parse_scopes(scopes),
        owner=check_name(owner, "owner") if owner.strip() else "",
        quota_per_day=quota_per_day,
        quota_per_month=quota_per_month,
        rate_per_second=rate_per_second,
        burst=burst,
        expires_at=expires_at.astimezone(dt.UTC) if expires_at else None,
    )


async def create(store: KeyStore, spec: NewKey) -> tuple[KeyRecord, str]:
    """Store a new key; returns its record and the key itself (shown once, never stored)."""
    key_id, key = new_key()
    digest = await asyncio.to_thread(hash_key, key)
    now = dt.datetime.now(dt.UTC)
    record = KeyRecord(
        id=key_id,
        hash=digest,
        name=spec.name,
        owner=spec.owner,
        scopes=spec.scopes,
        created_at=now,
        quota_per_day=spec.quota_per_day,
        quota_per_month=spec.quota_per_month,
        rate_per_second=spec.rate_per_second,
        burst=spec.burst,
        expires_at=spec.expires_at,
        updated_at=now,
    )
    await store.insert(record)
    return record, key


async def revoke(store: KeyStore, key_id: str) -> KeyRecord | None:
    return await store.revoke(key_id, dt.datetime.now(dt.UTC))
