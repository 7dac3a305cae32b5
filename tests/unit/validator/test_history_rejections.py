"""The own-history memory of refused figures is bounded (kurs_validator.engine)."""

from __future__ import annotations

from kurs_validator.engine import REJECTIONS_KEPT, _remember_rejection, _Series


def test_rejections_kept_per_series_are_bounded() -> None:
    series = _Series()
    for t in range(REJECTIONS_KEPT + 10):
        _remember_rejection(series, t, "1", "no_pivot_cross")
    assert len(series.rejected) == REJECTIONS_KEPT
    assert min(series.rejected) == 10  # the oldest went first
