"""Feed progress kept across restarts (kurs_collector.state)."""

from __future__ import annotations

from kurs_collector.state import FeedState


def test_corrupt_state_day_starts_fresh() -> None:
    assert FeedState.from_json({"last_day": "2025-01-5"}).last_day is None
    assert FeedState.from_json({"last_day": 7}).last_day is None
    assert FeedState.from_json({"last_day": "2025-01-05"}).last_day == "2025-01-05"
