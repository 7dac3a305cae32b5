"""kurs_rates.writes: the one inserted / updated / unchanged classifier of both stores."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_common.rate import Rate, RateKind
from kurs_rates.writes import classify, live_key, plan_batch, ref_key

D = dt.date(2025, 1, 15)
AT = dt.datetime(2025, 1, 15, 15, tzinfo=dt.UTC)


def ref(currency: str, value: str, source: str = "ecb", day: dt.date = D, flag: str = "") -> Rate:
    return Rate(source, RateKind.REFERENCE, currency, value, day, AT, (source,), flag=flag)


def tick(currency: str, value: str, second: int, source: str = "kraken") -> Rate:
    at = AT + dt.timedelta(seconds=second)
    return Rate(source, RateKind.LIVE, currency, value, at.date(), at, (source,))


def test_new_keys_are_inserted_and_nothing_else_happens() -> None:
    batch = [ref("USD", "1.03"), ref("GBP", "0.83"), tick("USD", "1.031", 1)]
    plan = plan_batch(batch)
    out = classify(batch, plan, {}, set())
    assert (out.inserted, out.updated, out.unchanged, out.changed) == (3, 0, 0, (0, 1, 2))
    assert out.writes == {ref_key(batch[0]): 0, ref_key(batch[1]): 1}
    assert out.new_keys == {ref_key(batch[0]), ref_key(batch[1])}


def test_stored_values_compare_as_decimals_and_a_different_one_is_a_correction() -> None:
    batch = [ref("USD", "1.0300"), ref("GBP", "0.84")]
    stored = {ref_key(batch[0]): "1.03", ref_key(batch[1]): "0.83"}
    out = classify(batch, plan_batch(batch), stored, set())
    assert (out.inserted, out.updated, out.unchanged, out.changed) == (0, 1, 1, (1,))
    assert out.writes == {ref_key(batch[1]): 1}
    assert not out.new_keys


def test_later_occurrences_compare_with_the_running_value_and_the_last_change_is_stored() -> None:
    # stored 1.03; in the batch: 1.03 (unchanged), 1.04 (updated), 1.04 (unchanged), 1.03 (updated)
    batch = [ref("USD", "1.03"), ref("USD", "1.04"), ref("USD", "1.040"), ref("USD", "1.03", flag="x")]
    out = classify(batch, plan_batch(batch), {ref_key(batch[0]): "1.03"}, set())
    assert (out.inserted, out.updated, out.unchanged, out.changed) == (0, 2, 2, (1, 3))
    assert out.writes == {ref_key(batch[0]): 3}  # written although equal to the stored value


def test_a_key_new_to_the_store_and_corrected_in_the_batch_is_inserted_with_its_last_value() -> None:
    batch = [ref("USD", "1.03"), ref("USD", "1.05"), ref("USD", "1.05")]
    out = classify(batch, plan_batch(batch), {}, set())
    assert (out.inserted, out.updated, out.unchanged, out.changed) == (1, 1, 1, (0, 1))
    assert out.writes == {ref_key(batch[0]): 1}
    assert out.new_keys == {ref_key(batch[0])}


def test_keys_differ_by_source_base_and_day() -> None:
    batch = [
        ref("USD", "1.03"),
        ref("USD", "1.03", source="blend"),
        ref("USD", "1.02", day=D.replace(day=14)),
    ]
    batch.append(Rate("boe", RateKind.REFERENCE, "USD", "1.25", D, AT, ("boe",), base="GBP"))
    assert len(plan_batch(batch).reference) == 4


def test_live_ticks_are_inserted_once_and_never_corrected() -> None:
    batch = [tick("USD", "1.1", 1), tick("USD", "1.2", 1), tick("USD", "1.1", 2), tick("GBP", "0.8", 1)]
    plan = plan_batch(batch)
    assert plan.live_repeats == 1
    out = classify(batch, plan, {}, {live_key(batch[2])})  # the store already held the second instant
    assert (out.inserted, out.updated, out.unchanged, out.changed) == (2, 0, 2, (0, 3))
    assert not out.writes


def test_live_keys_compare_instants_in_utc() -> None:
    here = tick("USD", "1.1", 0)
    there = Rate(
        "kraken",
        RateKind.LIVE,
        "USD",
        "1.1",
        D,
        AT.astimezone(dt.timezone(dt.timedelta(hours=2))),
        ("kraken",),
    )
    assert live_key(here) == live_key(there)


def test_a_value_that_is_not_a_decimal_is_named() -> None:
    with pytest.raises(ValueError, match=r"rates\[1\]\.value: 'abc' is not a decimal number"):
        plan_batch([ref("USD", "1.03"), ref("GBP", "abc")])


def test_changed_follows_input_order_across_kinds() -> None:
    batch = [tick("USD", "1.1", 1), ref("USD", "1.03"), tick("GBP", "0.8", 1)]
    assert classify(batch, plan_batch(batch), {}, set()).changed == (0, 1, 2)
