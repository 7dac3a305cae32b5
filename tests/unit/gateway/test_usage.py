"""Per-key request counts, quota periods and the v6 path key."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_gateway.usage import UsageCounter, period_start, v6_key


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


def test_counter_spends_until_the_quota_and_resets_with_the_period() -> None:
    now = [at("2026-03-20T10:00:00")]
    counter = UsageCounter(2, refresh_day=14, clock=lambda: now[0])
    assert counter.spend("a")
    assert counter.spend("a")
    assert not counter.spend("a")
    assert counter.spend("b")
    assert counter.quota("a").requests_remaining == 0
    assert counter.quota("b").requests_remaining == 1
    now[0] = at("2026-04-14T00:00:00")
    assert counter.used("a") == 0
    assert counter.quota("a").requests_remaining == 2
    assert counter.quota("a").refresh_day_of_month == 14


def test_counter_rejects_impossible_refresh_day() -> None:
    with pytest.raises(ValueError, match="refresh_day"):
        UsageCounter(10, refresh_day=0)


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
