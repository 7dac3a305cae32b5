"""Intraday bars (analysis.intraday.bars): periods on the UTC epoch, boundaries, exact strings,
Decimal (not text) comparison, empty periods without a bar, and the day-range limit."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_common.errors import InvalidArgument
from kurs_gateway.analysis.intraday import MAX_INTRADAY_DAYS, bars, day_range, period_of

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_one_minute_bars_open_first_close_last_and_compare_as_decimals() -> None:
    ticks = [
        (at(0), "9.5"),
        (at(10), "10.00"),  # as text "10.00" < "9.5"; as a number it is the high
        (at(20), "9.25"),
        (at(59.999), "9.75"),
        (at(60), "9.80"),  # the next minute begins exactly on its boundary
    ]
    got = bars(ticks, 60)
    assert got == [
        {
            "period_start": "2026-11-30T12:00:00Z",
            "open": "9.5",
            "high": "10.00",
            "low": "9.25",
            "close": "9.75",
            "count": 4,
            "first_at": "2026-11-30T12:00:00Z",
            "last_at": "2026-11-30T12:00:59.999000Z",
        },
        {
            "period_start": "2026-11-30T12:01:00Z",
            "open": "9.80",
            "high": "9.80",
            "low": "9.80",
            "close": "9.80",
            "count": 1,
            "first_at": "2026-11-30T12:01:00Z",
            "last_at": "2026-11-30T12:01:00Z",
        },
    ]


def test_a_period_without_ticks_has_no_bar_and_equal_values_keep_the_first_text() -> None:
    ticks = [(at(0), "1.10"), (at(1), "1.1"), (at(3 * 300 + 5), "1.2")]
    got = bars(ticks, 300)
    assert [b["period_start"] for b in got] == ["2026-11-30T12:00:00Z", "2026-11-30T12:15:00Z"]
    assert (got[0]["high"], got[0]["low"], got[0]["close"]) == ("1.10", "1.10", "1.1")


def test_unordered_input_is_ordered_by_time_and_equal_instants_keep_their_order() -> None:
    ticks = [(at(30), "3"), (at(5), "1"), (at(5), "2")]
    (bar,) = bars(ticks, 3600)
    assert (bar["open"], bar["close"], bar["high"], bar["low"], bar["count"]) == ("1", "3", "3", "1", 3)


@pytest.mark.parametrize("seconds", [60, 300, 900, 3600])
def test_periods_align_on_utc_midnight(seconds: int) -> None:
    midnight = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    assert period_of(midnight, seconds) == midnight
    assert period_of(midnight - dt.timedelta(microseconds=1), seconds) == midnight - dt.timedelta(
        seconds=seconds
    )
    assert bars([], seconds) == []


def test_day_range_covers_whole_utc_days_up_to_the_limit() -> None:
    first = dt.date(2026, 11, 1)
    start, end = day_range(first, first + dt.timedelta(days=MAX_INTRADAY_DAYS - 1))
    assert start == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    with pytest.raises(InvalidArgument) as caught:
        day_range(first, first + dt.timedelta(days=MAX_INTRADAY_DAYS))
    assert caught.value.field == "end_date"
