"""LatestRates: sequences, the replay ring behind since_sequence, and the fan-out payload format."""

from __future__ import annotations

import datetime as dt

import pytest

from kurs_rates.book import ChangeSet, LatestRates
from kurs_rates.model import Rate, RateKind
from kurs_rates.pg_schema import bundled_migrations
from kurs_rates.pg_writes import _pg_array
from kurs_rates.replication import Update


def tick(currency: str, value: str, second: int, source: str = "replay") -> Rate:
    at = dt.datetime(2026, 11, 2, 16, 0, second, tzinfo=dt.UTC)
    return Rate(source, RateKind.LIVE, currency, value, at.date(), at, (source,), True)


def fixing(day: str, **values: str) -> list[Rate]:
    d = dt.date.fromisoformat(day)
    at = dt.datetime.combine(d, dt.time(15), dt.UTC)
    return [Rate("ecb", RateKind.REFERENCE, c, v, d, at, ("ecb",)) for c, v in values.items()]


def test_local_sequence_counts_change_sets_and_skips_no_ops() -> None:
    book = LatestRates()
    assert book.apply(fixing("2026-11-02", USD="1.16"), []) == ChangeSet(
        1, tuple(fixing("2026-11-02", USD="1.16"))
    )
    assert book.apply(fixing("2026-11-02", USD="1.16"), []) is None
    change = book.apply(None, [tick("USD", "1.17", 1)])
    assert change is not None
    assert (change.sequence, book.sequence) == (2, 2)


def test_since_returns_what_was_missed_within_the_window() -> None:
    book = LatestRates(replay_window=3)
    for i in range(1, 6):
        book.apply(None, [tick("USD", f"1.1{i}", i)])
    assert book.sequence == 5
    assert book.since(5) == []
    assert [c.sequence for c in book.since(3) or []] == [4, 5]
    assert [c.sequence for c in book.since(2) or []] == [3, 4, 5]
    assert book.since(1) is None  # change set 2 fell out of the window
    assert book.since(6) is None  # a sequence this book never issued


def test_a_book_loaded_mid_stream_cannot_replay_what_came_before() -> None:
    book = LatestRates()
    book.seed(40, [])
    assert book.since(40) == []
    assert book.since(39) is None
    history = [ChangeSet(41, (tick("USD", "1.2", 1),)), ChangeSet(42, (tick("GBP", "0.9", 2),))]
    book.seed(42, history)
    assert book.since(40) == history
    assert book.since(39) is None


def test_global_sequences_and_local_only_changes() -> None:
    book = LatestRates()
    change = book.apply(None, [tick("USD", "1.16", 1)], sequence=7)
    assert change is not None
    assert (change.sequence, book.sequence) == (7, 7)
    assert book.apply(None, [tick("USD", "1.16", 1)], sequence=8) is None
    assert book.sequence == 8  # a no-op update still advances the global position
    local = book.apply(None, [tick("USD", "1.18", 2)])  # Redis unreachable: numbered locally
    assert local is not None
    assert (local.sequence, book.sequence) == (9, 9)
    assert book.since(6) == [change, local]  # exact on this replica while Redis is away
    book.seal(9)  # Redis is back: another replica may have used 9 for something else
    assert book.since(6) is None
    assert book.since(9) is None
    assert book.apply(None, [tick("USD", "1.19", 3)], sequence=10) is not None
    assert book.since(10) == []


def test_local_numbers_never_repeat_and_every_change_gets_one() -> None:
    book = LatestRates()
    book.start_at(1_000)
    book.start_at(10)  # a floor never moves the sequence back
    seen = []
    for i in range(15):
        change = book.apply(None, [tick(f"C{i:02d}", "1.5", i)])
        assert change is not None
        seen.append(change.sequence)
    assert seen == list(range(1_001, 1_016))
    assert book.since(999) is None  # nothing before the start is known here
    assert len(book.since(1_000) or []) == 15  # a snapshot taken at the start, then 15 changes
    missed = book.since(1_001) or []
    assert {r.currency for c in missed for r in c.rates} == {f"C{i:02d}" for i in range(1, 15)}


def test_a_resync_is_numbered_above_everything_sent_and_replaces_the_view() -> None:
    book = LatestRates()
    book.apply(None, [tick("USD", "1.16", 1)], sequence=5)
    with book.subscribe() as sub:
        book.resync([tick("GBP", "0.88", 2)], 3)  # a counter below ours still moves us up
        assert book.sequence == 6
        assert sub.overflowed
        assert sub.queue.get_nowait().sequence == 6
    assert book.since(5) is None
    assert book.since(6) == []


def test_an_older_fixing_never_replaces_a_newer_one() -> None:
    book = LatestRates()
    book.apply(fixing("2026-11-03", USD="1.17"), [])
    assert book.apply(fixing("2026-11-02", USD="1.16"), []) is None
    assert book.effective()["USD"].value == "1.17"


async def test_wait_for_returns_once_applied() -> None:
    book = LatestRates()
    assert not await book.wait_for(1, 0.01)
    book.apply(None, [tick("USD", "1.16", 1)], sequence=1)
    assert await book.wait_for(1, 0.01)


def test_update_payload_round_trips_exactly() -> None:
    update = Update(tuple(fixing("2026-11-02", USD="1.1600", GBP="0.83380")), (tick("JPY", "178.10", 3),), ())
    again = Update.decode(update.encode())
    assert again == update
    assert Update.decode(Update(None, (), ()).encode()).reference is None


@pytest.mark.parametrize(
    ("items", "literal"),
    [((), "{}"), (("ecb",), '{"ecb"}'), (("a,b", 'q"t', "b\\s"), '{"a,b","q\\"t","b\\\\s"}')],
)
def test_text_array_literals(items: tuple[str, ...], literal: str) -> None:
    assert _pg_array(items) == literal


def test_bundled_migrations_are_numbered_from_one() -> None:
    migrations = bundled_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert "CREATE TABLE reference_rates" in migrations[0].sql
