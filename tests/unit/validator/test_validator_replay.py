"""Replays of the real ECB history (shipped offline) with injected corruptions.

Each corruption is rejected for its reason, nothing else is, and the published series equals the
clean one: with the ECB alone, minus the corrupted figures; with two honest mirrors beside it,
in full and digit for digit.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pytest
from unit.validator.helpers import engine, picked_by, reference_series, run

from kurs_collector.feeds.ecb_history import parse_history_csv
from kurs_common import money
from kurs_common.observation import Observation
from kurs_validator.model import BatchOutcome

START = "2021-01-01"
BATCH = 5_000


@pytest.fixture(scope="module")
def clean(history_csv: str) -> list[Observation]:
    """The real history from START on, oldest first, as the collector sends it."""
    observations = [o for o in parse_history_csv(history_csv) if o.day >= START]
    observations.reverse()
    return observations


def _scale(factor: str) -> Callable[[str], str]:
    return lambda v: money.format_decimal(Decimal(v) * Decimal(factor))


# (currency, date) -> (how the figure is corrupted, the reason it must be rejected for)
CORRUPTIONS: dict[tuple[str, str], tuple[Callable[[str], str], str]] = {
    ("GBP", "2022-03-15"): (money.invert, "inverted"),
    ("JPY", "2023-05-10"): (money.invert, "inverted"),
    ("USD", "2024-09-02"): (money.invert, "inverted"),
    ("JPY", "2021-06-01"): (_scale("100"), "decimal_shift"),
    ("HUF", "2022-11-22"): (_scale("0.1"), "decimal_shift"),
    ("ZAR", "2025-02-11"): (_scale("10"), "decimal_shift"),
    ("PLN", "2023-08-16"): (_scale("1.08"), "jump"),  # a one-day spike
    ("SEK", "2025-06-18"): (_scale("0.9"), "jump"),
}
# A stuck source: on these dates the ECB republishes its previous day's figures.
STUCK = ("2024-03-05", "2024-03-06")


def corrupt(observations: list[Observation]) -> tuple[list[Observation], dict[tuple[str, str], str]]:
    """The corrupted stream, and the reason expected for every corrupted (currency, date)."""
    by_day: dict[str, dict[str, str]] = {}
    for obs in observations:
        by_day.setdefault(obs.day, {})[obs.quote] = obs.value
    days = sorted(by_day)
    expected: dict[tuple[str, str], str] = {}
    out: list[Observation] = []
    for obs in observations:
        key = (obs.quote, obs.day)
        if obs.day in STUCK:
            before = days[days.index(STUCK[0]) - 1]
            value = by_day[before].get(obs.quote, obs.value)
            if value != obs.value:
                expected[key] = "stuck"
            out.append(dataclasses.replace(obs, value=value))
        elif key in CORRUPTIONS:
            change, reason = CORRUPTIONS[key]
            expected[key] = reason
            out.append(dataclasses.replace(obs, value=change(obs.value)))
        else:
            out.append(obs)
    assert len(expected) >= len(CORRUPTIONS) + 20
    return out, expected


def _batches(observations: list[Observation]) -> list[list[Observation]]:
    return [observations[i : i + BATCH] for i in range(0, len(observations), BATCH)]


def _rejected(outcomes: list[BatchOutcome]) -> dict[tuple[str, str], str]:
    return {(a.currency, a.observation.day): a.reason for o in outcomes for a in o.anomalies}


def test_the_clean_history_passes_untouched(clean: list[Observation]) -> None:
    outcomes = run(engine(), _batches(clean))
    assert not any(o.rejections or o.anomalies for o in outcomes)
    assert sum(o.held for o in outcomes) == 0
    published = {k: p.value for k, p in reference_series(outcomes).items()}
    assert published == {(o.quote, o.day): o.value for o in clean}


def test_corruptions_of_the_only_source_are_rejected(clean: list[Observation]) -> None:
    corrupted, expected = corrupt(clean)
    outcomes = run(engine(), _batches(corrupted))
    rejected = _rejected(outcomes)
    # Stuck figures of currencies that did not move that day cannot be told from a real figure.
    assert {k: r for k, r in rejected.items() if r != "stuck"} == {
        k: r for k, r in expected.items() if r != "stuck"
    }
    stuck = {k for k, r in rejected.items() if r == "stuck"}
    assert stuck >= {k for k, r in expected.items() if r == "stuck"}
    assert all(k[1] in STUCK for k in stuck)
    published = {k: p.value for k, p in reference_series(outcomes).items()}
    cleaned = {(o.quote, o.day): o.value for o in clean}
    assert published == {k: v for k, v in cleaned.items() if k not in rejected}
    assert Counter(rejected.values())["stuck"] == len(stuck)


def test_with_two_honest_mirrors_the_published_series_is_the_clean_one(clean: list[Observation]) -> None:
    corrupted, expected = corrupt(clean)
    mirrors = [
        dataclasses.replace(o, source=name, feed=name) for name in ("mirror-a", "mirror-b") for o in clean
    ]
    stream = sorted([*corrupted, *mirrors], key=lambda o: (o.day, o.source))
    outcomes = run(engine(), _batches(stream))
    rejected = _rejected(outcomes)
    assert set(rejected) >= set(expected)
    # Other sources see a spike as an outlier at once, without waiting for the next day.
    assert {k: r for k, r in rejected.items() if k in expected and r != "stuck"} == {
        k: "outlier" if r == "jump" else r for k, r in expected.items() if r != "stuck"
    }
    assert all(a.observation.source == "ecb" for o in outcomes for a in o.anomalies)
    published = reference_series(outcomes)
    assert {k: p.value for k, p in published.items()} == {(o.quote, o.day): o.value for o in clean}
    # The ECB's own figure is the one published whenever it passed (and, for the comparison in USD,
    # its own USD cross of that date passed too).
    picked = picked_by(outcomes)
    assert all(picked[k] == "ecb" for k in published if k not in rejected and ("USD", k[1]) not in rejected)
    assert all(picked[k].startswith("mirror") for k in published if k in rejected)
