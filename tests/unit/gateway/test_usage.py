"""Quota periods, v6 quota figures and the v6 path key (counting itself: test_keys_meter.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_gateway.usage import Quota, period_start, quota_of, v6_client, v6_key


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("moment", "day", "start"),
    [
        ("2026-03-20T10:00:00", 14, "2026-03-14T00:00:00"),
        ("2026-03-10T10:00:00", 14, "2026-02-14T00:00:00"),
        ("2026-01-05T00:00:00", 14, "2025-12-14T00:00:00"),
        ("2026-03-01T00:00:00", 31, "2026-02-28T00:00:00"),  # short month: its last day
        ("2026-03-31T00:00:00", 31, "2026-03-31T00:00:00"),
        ("2026-03-01T00:00:00", 1, "2026-03-01T00:00:00"),
    ],
)
def test_period_start(moment: str, day: int, start: str) -> None:
    assert period_start(at(moment), day) == at(start)


def test_quota_is_what_is_left_of_the_plan_and_of_today() -> None:
    assert quota_of(10, 3, 14) == Quota(10, 7, 14)
    assert quota_of(10, 12, 1) == Quota(10, 0, 1)  # never negative
    assert quota_of(10, 3, 1, day_left=2).requests_remaining == 2
    assert quota_of(10, 3, 1, day_left=-1).requests_remaining == 0


def test_v6_client_never_holds_the_key() -> None:
    client = v6_client("my-secret-key")
    assert client.startswith("v6:")
    assert "my-secret-key" not in client
    assert client == v6_client("my-secret-key") != v6_client("other")


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/v6/abc/latest/USD", "abc"),
        ("/v6/abc/quota", "abc"),
        ("/v6/a%20b/codes", "a b"),
        ("/v6/latest/USD", None),  # the open endpoint has no key
        ("/v6/latest/latest/USD", "latest"),
        ("/rates/latest", None),
        ("/v6/", None),
    ],
)
def test_v6_key(path: str, key: str | None) -> None:
    assert v6_key(path) == key
