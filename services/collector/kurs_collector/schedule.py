"""Publication schedules: when a source publishes, in its own time zone and calendar.

A Schedule answers three questions for the runner:

* `latest_due(now)`: the newest business day whose figures should be published by `now`;
* `next_run(now)`: the next publication instant after `now` (UTC);
* `missed(last_day, now)`: publications due by `now` that are newer than the newest day held.

Calendars: TARGET (ECB) exactly; other banks use weekdays plus their fixed and Easter-based
closing days. A closing day a calendar does not know only delays the counter: it shows one
missed publication until the next publication arrives (see docs/sources.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

ONE_DAY = dt.timedelta(days=1)
WEEKDAYS = frozenset(range(5))


@lru_cache(maxsize=512)
def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@dataclass(frozen=True)
class Calendar:
    """Business days: `weekdays`, minus fixed (month, day) holidays and Easter-relative days."""

    name: str
    fixed: frozenset[tuple[int, int]] = frozenset()
    easter_offsets: frozenset[int] = frozenset()
    weekdays: frozenset[int] = WEEKDAYS

    def is_business_day(self, day: dt.date) -> bool:
        if day.weekday() not in self.weekdays:
            return False
        if (day.month, day.day) in self.fixed:
            return False
        return (day - easter_sunday(day.year)).days not in self.easter_offsets

    def previous_business_day(self, day: dt.date) -> dt.date:
        day -= ONE_DAY
        while not self.is_business_day(day):
            day -= ONE_DAY
        return day

    def business_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        out: list[dt.date] = []
        day = start
        while day <= end:
            if self.is_business_day(day):
                out.append(day)
            day += ONE_DAY
        return out


# TARGET2 closing days: 1 Jan, Good Friday, Easter Monday, 1 May, 25 and 26 Dec.
TARGET = Calendar("TARGET", frozenset({(1, 1), (5, 1), (12, 25), (12, 26)}), frozenset({-2, 1}))
WEEKDAYS_ONLY = Calendar("weekdays")


@dataclass(frozen=True)
class Schedule:
    """Daily publication at `at` local time in `tz` on the calendar's business days.

    weekly_on: publish once a week on that weekday (0 = Monday) at `at`, covering every
    business day up to the previous day (the Fed's H.10 release).
    """

    tz: ZoneInfo
    at: dt.time
    calendar: Calendar = WEEKDAYS_ONLY
    weekly_on: int | None = None
    # The figures of day D are published on D (0) or on the next business day (1).
    lag_days: int = 0
    label: str = field(default="")

    def publication_instant(self, day: dt.date) -> dt.datetime:
        """When the figures of business day `day` are published, in UTC."""
        pub = day
        for _ in range(self.lag_days):
            pub = pub + ONE_DAY
            while not self.calendar.is_business_day(pub):
                pub += ONE_DAY
        if self.weekly_on is not None:
            pub = pub + ONE_DAY
            while pub.weekday() != self.weekly_on:
                pub += ONE_DAY
        return dt.datetime.combine(pub, self.at, tzinfo=self.tz).astimezone(dt.UTC)

    def observation_instant(self, day: dt.date) -> dt.datetime:
        """The source's own time of the figures of `day` (its fixing time that day), UTC."""
        return dt.datetime.combine(day, self.at, tzinfo=self.tz).astimezone(dt.UTC)

    def latest_due(self, now: dt.datetime) -> dt.date | None:
        """The newest business day whose publication instant is at or before `now`."""
        day = now.astimezone(self.tz).date() + ONE_DAY
        for _ in range(40):
            if self.calendar.is_business_day(day) and self.publication_instant(day) <= now:
                return day
            day -= ONE_DAY
        return None

    def next_run(self, now: dt.datetime) -> dt.datetime:
        """The first publication instant strictly after `now`."""
        day = now.astimezone(self.tz).date() - dt.timedelta(days=8)
        best: dt.datetime | None = None
        for _ in range(60):
            if self.calendar.is_business_day(day):
                instant = self.publication_instant(day)
                if instant > now and (best is None or instant < best):
                    best = instant
                    break
            day += ONE_DAY
        return best if best is not None else now + ONE_DAY

    def due_days(self, after: dt.date, now: dt.datetime) -> list[dt.date]:
        latest = self.latest_due(now)
        if latest is None or latest <= after:
            return []
        return self.calendar.business_days(after + ONE_DAY, latest)

    def missed(self, last_day: dt.date | None, now: dt.datetime, since: dt.datetime) -> int:
        """Publications due by `now` newer than `last_day`.

        Without any day held yet, counts those due after `since` (the collector's start),
        so a fresh install does not report years of history as missed.
        """
        if last_day is None:
            first = self.latest_due(since)
            if first is None:
                return 0
            return len(self.due_days(self.calendar.previous_business_day(first), now))
        return len(self.due_days(last_day, now))


def unique_days(days: Iterable[dt.date]) -> list[dt.date]:
    return sorted(set(days))
