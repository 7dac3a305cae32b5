"""Publication schedules in each source's own time zone and calendar."""

from __future__ import annotations

import datetime as dt

from kurs_collector.feeds.boc import BocFeed
from kurs_collector.feeds.ecb import ECB_SCHEDULE
from kurs_collector.feeds.fed import H10_SCHEDULE
from kurs_collector.schedule import TARGET, easter_sunday

UTC = dt.UTC


def test_easter() -> None:
    assert easter_sunday(2024) == dt.date(2024, 3, 31)
    assert easter_sunday(2025) == dt.date(2025, 4, 20)
    assert easter_sunday(2026) == dt.date(2026, 4, 5)


def test_target_closing_days() -> None:
    closed = [dt.date(2025, 1, 1), dt.date(2025, 4, 18), dt.date(2025, 4, 21), dt.date(2025, 5, 1)]
    closed += [dt.date(2025, 12, 25), dt.date(2025, 12, 26), dt.date(2025, 1, 18)]  # the last: Saturday
    assert not [d for d in closed if TARGET.is_business_day(d)]
    assert TARGET.is_business_day(dt.date(2025, 4, 17))
    assert TARGET.previous_business_day(dt.date(2025, 4, 22)) == dt.date(2025, 4, 17)


def test_ecb_publication_follows_frankfurt_time() -> None:
    # Winter: 16:00 CET = 15:00 UTC; summer: 16:00 CEST = 14:00 UTC.
    assert ECB_SCHEDULE.publication_instant(dt.date(2025, 1, 15)) == dt.datetime(2025, 1, 15, 15, tzinfo=UTC)
    assert ECB_SCHEDULE.publication_instant(dt.date(2025, 7, 15)) == dt.datetime(2025, 7, 15, 14, tzinfo=UTC)
    assert ECB_SCHEDULE.latest_due(dt.datetime(2025, 1, 15, 14, 59, tzinfo=UTC)) == dt.date(2025, 1, 14)
    assert ECB_SCHEDULE.latest_due(dt.datetime(2025, 1, 15, 15, 0, tzinfo=UTC)) == dt.date(2025, 1, 15)
    # Friday evening -> the next run is Monday 16:00 CET.
    friday = dt.datetime(2025, 1, 17, 18, 0, tzinfo=UTC)
    assert ECB_SCHEDULE.next_run(friday) == dt.datetime(2025, 1, 20, 15, 0, tzinfo=UTC)
    # Before Easter: Maundy Thursday -> Tuesday after Easter Monday.
    assert ECB_SCHEDULE.next_run(dt.datetime(2025, 4, 17, 16, tzinfo=UTC)) == dt.datetime(
        2025, 4, 22, 14, 0, tzinfo=UTC
    )


def test_boc_publishes_at_1630_eastern() -> None:
    schedule = BocFeed.schedule
    assert schedule.publication_instant(dt.date(2025, 1, 15)) == dt.datetime(2025, 1, 15, 21, 30, tzinfo=UTC)
    assert schedule.publication_instant(dt.date(2025, 6, 16)) == dt.datetime(2025, 6, 16, 20, 30, tzinfo=UTC)
    assert not schedule.calendar.is_business_day(dt.date(2025, 7, 1))  # Canada Day


def test_h10_is_weekly_on_monday() -> None:
    # Figures of Tue 14 Jan 2025 come out with the release of Monday 20 Jan.
    assert H10_SCHEDULE.publication_instant(dt.date(2025, 1, 14)).date() == dt.date(2025, 1, 20)
    assert H10_SCHEDULE.latest_due(dt.datetime(2025, 1, 19, 12, tzinfo=UTC)) == dt.date(2025, 1, 10)
    assert H10_SCHEDULE.latest_due(dt.datetime(2025, 1, 20, 18, tzinfo=UTC)) == dt.date(2025, 1, 17)
    assert H10_SCHEDULE.next_run(dt.datetime(2025, 1, 21, tzinfo=UTC)).date() == dt.date(2025, 1, 27)


def test_missed_publications() -> None:
    now = dt.datetime(2025, 1, 17, 18, 0, tzinfo=UTC)  # Friday, after the ECB publication
    assert ECB_SCHEDULE.missed(dt.date(2025, 1, 17), now, now) == 0
    assert ECB_SCHEDULE.missed(dt.date(2025, 1, 14), now, now) == 3
    # Nothing held yet: count what fell due since the collector started, including the one due then.
    started = dt.datetime(2025, 1, 16, 9, 0, tzinfo=UTC)
    assert ECB_SCHEDULE.missed(None, now, started) == 3
    assert ECB_SCHEDULE.missed(None, started, started) == 1
