"""Held figures survive a restart: `held_records` / `restore_held` (kurs_validator.engine.history)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import orjson
from unit.validator.helpers import NOW, business_days, engine, fixing, reference_series, wobble

from kurs_common import money
from kurs_common.observation import Observation
from kurs_validator.engine import ValidationEngine, history

CODES = ["USD", "JPY", "GBP", "CHF", "SEK", "NOK", "PLN", "CZK"]
LEVELS = ["1.1172", "175.68", "0.8338", "0.9194", "10.978", "10.312", "4.4038", "24.353"]
CHF = 3


def ecb_days(count: int) -> list[list[Observation]]:
    days = business_days(count)
    return [
        [fixing("ecb", c, v, d) for c, v in zip(CODES, wobble(LEVELS, i), strict=True)]
        for i, d in enumerate(days)
    ]


def scaled(obs: Observation, factor: str) -> Observation:
    return dataclasses.replace(obs, value=money.format_decimal(Decimal(obs.value) * Decimal(factor)))


def held_after(batches: list[list[Observation]]) -> list[dict[str, Any]]:
    """Run the batches through one engine; its held figures, through JSON as the store keeps them."""
    eng = engine()
    outcomes = [eng.process(b, NOW) for b in batches]
    assert outcomes[-1].held == 1
    records = history.held_records(eng._state)
    assert list(records) == [("ecb", "reference", "EUR", "CHF")]
    return [orjson.loads(orjson.dumps(r)) for r in records.values()]


def restarted(records: list[dict[str, Any]]) -> ValidationEngine:
    eng = engine()
    assert history.restore_held(eng._state, records) == 1
    return eng


def test_a_restored_spike_is_still_rejected_by_the_next_figure() -> None:
    batches = ecb_days(27)
    batches[25][CHF] = scaled(batches[25][CHF], "1.1")
    records = held_after(batches[:26])
    assert records[0]["obs"]["value"] == batches[25][CHF].value

    eng = restarted(records)
    # The held figure is known: a resubmission of it is a duplicate, not a fresh figure.
    again = eng.process([batches[25][CHF]], NOW)
    assert (again.accepted, again.duplicates, again.published) == (1, 1, [])
    after = eng.process(batches[26], NOW)
    (anomaly,) = after.anomalies
    assert (anomaly.reason, anomaly.currency, anomaly.observation.day) == (
        "jump",
        "CHF",
        batches[25][CHF].day,
    )
    assert ("CHF", batches[25][CHF].day) not in reference_series([after])
    assert history.held_records(eng._state) == {}


def test_a_restored_lasting_move_is_published_late() -> None:
    batches = ecb_days(27)
    for i in (25, 26):  # CHF moves 15% down and stays
        batches[i][CHF] = scaled(batches[i][CHF], "0.85")
    records = held_after(batches[:26])

    eng = restarted(records)
    after = eng.process(batches[26], NOW)
    assert not after.rejections
    assert not after.anomalies
    late = [p for p in after.published if p.currency == "CHF"]
    assert [(p.day.isoformat(), p.value) for p in late] == [
        (batches[25][CHF].day, batches[25][CHF].value),
        (batches[26][CHF].day, batches[26][CHF].value),
    ]


def test_nothing_held_means_nothing_restored() -> None:
    eng = engine()
    eng.process(ecb_days(3)[0], NOW)
    assert history.held_records(eng._state) == {}
    assert history.restore_held(engine()._state, []) == 0
