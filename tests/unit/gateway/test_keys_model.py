"""Key format, hashing, scopes, quotas and route classes."""

from __future__ import annotations

import pytest

from kurs_gateway.keys.model import (
    KeyFieldError,
    hash_key,
    key_id_of,
    new_key,
    parse_quota,
    parse_scopes,
    route_class,
    verify_key,
)


def test_a_new_key_has_a_readable_prefix_and_a_long_secret() -> None:
    key_id, key = new_key()
    assert key.startswith(key_id + "_")
    assert key_id.startswith("kurs_")
    assert len(key_id) == 17
    assert key_id_of(key) == key_id
    assert len(key) - len(key_id) - 1 == 43  # 256 random bits, url-safe base64
    assert new_key()[1] != key


@pytest.mark.parametrize("text", ["", "kurs_123", "sk_live_abc", "kurs_3f9a1c2b7d10_short", "x" * 61])
def test_key_id_of_refuses_what_is_not_a_key(text: str) -> None:
    assert key_id_of(text) is None


def test_the_hash_verifies_the_key_and_holds_neither_key_nor_secret() -> None:
    _, key = new_key()
    stored = hash_key(key)
    assert verify_key(key, stored)
    assert not verify_key(key[:-1] + ("A" if key[-1] != "A" else "B"), stored)
    assert key not in stored
    assert key[18:] not in stored
    assert stored.startswith("scrypt$")
    assert hash_key(key) != stored  # a fresh salt every time
    assert not verify_key(key, "garbage")


def test_scopes_and_quotas_name_the_field_when_wrong() -> None:
    assert parse_scopes("read, Stream") == {"read", "stream"}
    assert parse_scopes(["admin"]) == {"admin"}
    with pytest.raises(KeyFieldError) as info:
        parse_scopes("read,write")
    assert info.value.field == "scopes"
    with pytest.raises(KeyFieldError):
        parse_scopes(" , ")
    assert parse_quota("1000/day") == (1000, "day")
    assert parse_quota(" 5 / month ") == (5, "month")
    for bad in ("0/day", "1000", "10/week", "-1/day"):
        with pytest.raises(KeyFieldError) as info:
            parse_quota(bad)
        assert info.value.field == "quota"


@pytest.mark.parametrize(
    ("path", "klass"),
    [
        ("/rates/latest", "read"),
        ("/rates/historical", "read"),
        ("/rates/timeseries", "bulk"),
        ("/frankfurter/2025-01-01..2025-01-31", "bulk"),
        ("/frankfurter/2025-01-15", "read"),
        ("/openexchangerates/api/time-series.json", "bulk"),
        ("/rates/convert/bulk", "bulk"),
        ("/ws/rates/stream", "stream"),
        ("/alerts/rules", "alerts"),
        ("/ws/alerts", "alerts"),
        ("/admin/keys", "admin"),
        ("/administrator", "read"),
        ("/v6/k/latest/USD", "read"),
    ],
)
def test_route_class(path: str, klass: str) -> None:
    assert route_class(path) == klass
