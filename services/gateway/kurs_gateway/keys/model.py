"""API keys as data: the record, scopes and route classes, key generation and hashing.

A key reads `kurs_<id>_<secret>`: `kurs_<id>` is its readable prefix (shown in lists, stored in
clear as the record's id), the secret is 256 random bits. Only a scrypt hash of the whole key
(random salt per key) is stored; the key itself is printed once, at creation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace

SCOPES = ("read", "stream", "bulk", "alerts", "admin")
STATIC_SCOPES = ("read", "stream", "bulk", "alerts")
# Route classes: what a request needs, and the buckets /usage reports counts in.
ROUTE_CLASSES = SCOPES
KEY_PREFIX = "kurs"
ID_PATTERN = re.compile(r"^kurs_[0-9a-f]{12}$")
KEY_PATTERN = re.compile(r"^kurs_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")

# scrypt cost: ~16 MiB and some tens of milliseconds per check; each gateway checks a given key
# once and then remembers the answer in memory (registry.py).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class KeyFieldError(ValueError):
    """A key field that cannot be accepted; `field` names it."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str  # the readable prefix, e.g. kurs_3f9a1c2b7d10
    hash: str  # scrypt$N$r$p$salt$digest (never the key)
    name: str
    owner: str
    scopes: frozenset[str]
    created_at: dt.datetime
    quota_per_day: int | None = None
    quota_per_month: int | None = None
    rate_per_second: float | None = None  # None: the gateway's default rate limit
    burst: int | None = None
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    updated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def public(self) -> dict[str, object]:
        """The record as shown to administrators: everything but the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "scopes": sorted(self.scopes),
            "quota_per_day": self.quota_per_day,
            "quota_per_month": self.quota_per_month,
            "rate_per_second": self.rate_per_second,
            "burst": self.burst,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
        }

    def revoked(self, moment: dt.datetime) -> KeyRecord:
        return replace(self, revoked_at=self.revoked_at or moment, updated_at=moment)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def hash_key(key: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    enc = base64.urlsafe_b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${enc(salt).decode()}${enc(digest).decode()}"


def verify_key(key: str, stored: str) -> bool:
    """True when `key` hashes to `stored` (slow: run it off the event loop)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        dec = base64.urlsafe_b64decode
        expected = dec(digest)
        got = hashlib.scrypt(key.encode(), salt=dec(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def new_key() -> tuple[str, str]:
    """A fresh (id, key): the id is the key's readable prefix."""
    key_id = f"{KEY_PREFIX}_{secrets.token_hex(6)}"
    return key_id, f"{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The id a presented key claims (its prefix), or None when it is not shaped like one."""
    if len(key) != 61 or not KEY_PATTERN.match(key):
        return None
    return key[:17]


def parse_scopes(text: str | list[str]) -> frozenset[str]:
    items = text.split(",") if isinstance(text, str) else text
    scopes = frozenset(s.strip().lower() for s in items if s.strip())
    if not scopes:
        raise KeyFieldError("scopes", f"at least one of {', '.join(SCOPES)}")
    unknown = scopes - set(SCOPES)
    if unknown:
        raise KeyFieldError("scopes", f"unknown scope {sorted(unknown)[0]!r}; allowed: {', '.join(SCOPES)}")
    return scopes


QUOTA = re.compile(r"^\s*([0-9]{1,12})\s*/\s*(day|month)\s*$")


def parse_quota(text: str) -> tuple[int, str]:
    """`1000/day` or `20000/month` -> (count, period)."""
    match = QUOTA.match(text)
    if not match or int(match.group(1)) < 1:
        raise KeyFieldError("quota", "write it as N/day or N/month with N >= 1")
    return int(match.group(1)), match.group(2)


def check_name(name: str, field_name: str = "name") -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100 or any(ord(c) < 32 for c in name):
        raise KeyFieldError(field_name, "1 to 100 printable characters")
    return name


def route_class(path: str) -> str:
    """The scope a request path needs (and the class its usage is counted in).

    admin: /admin/...; alerts: /alerts... and /ws/alerts; stream: other WebSockets (the guard
    also counts GraphQL over WebSocket as stream); bulk: time series and bulk conversion; else read.
    """
    if path.startswith("/admin/") or path == "/admin":
        return "admin"
    if path.startswith(("/alerts", "/ws/alerts")):
        return "alerts"
    if path.startswith("/ws/"):
        return "stream"
    if (
        path.startswith("/rates/timeseries")
        or "/bulk" in path
        or path.startswith("/openexchangerates/api/time-series")
        or (path.startswith("/frankfurter/") and ".." in path)
    ):
        return "bulk"
    return "read"
