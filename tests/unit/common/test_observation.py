from __future__ import annotations

import datetime as dt

from kurs_common.observation import LIVE, Observation


def test_proto_round_trip_keeps_every_field() -> None:
    obs = Observation(
        source="kraken",
        feed="kraken-ws",
        kind=LIVE,
        base="EUR",
        quote="USD",
        value="1.08345",
        day="2026-11-27",
        observed_at=dt.datetime(2026, 11, 27, 3, 4, 5, 123456, tzinfo=dt.UTC),
        fetched_at=dt.datetime(1999, 1, 4, 15, 0, tzinfo=dt.UTC),
        bid="1.0834",
        ask="1.0835",
        replay=True,
    )
    assert Observation.from_proto(obs.to_proto()) == obs


def test_missing_times_stay_missing() -> None:
    obs = Observation("ecb", "ecb-daily", "", "EUR", "USD", "1.1", "2026-11-27", None)
    back = Observation.from_proto(obs.to_proto())
    assert back.observed_at is None
    assert back.fetched_at is None
    assert back.kind == ""
