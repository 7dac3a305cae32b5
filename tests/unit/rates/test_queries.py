"""RateQueries on the embedded store: which day answers, which base, which symbols, and the
errors that name the offending parameter.

Two business days of the blended series (JPY only on the first, as on a publisher's holiday)
and one day of the Bank of England's own figures (per one GBP), in a SQLite file under tmp_path.
The expected cross rates are the README's (base USD from EUR 1.1172 and GBP 0.8338).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from kurs_common.errors import InvalidArgument, NotFound, QueryError
from kurs_rates.book import LatestRates
from kurs_rates.model import BLEND, Rate, RateKind
from kurs_rates.queries import RateQueries
from kurs_rates.sqlite_store import SqliteRateStore

MONDAY, TUESDAY = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def published(source: str, day: dt.date, base: str, **values: str) -> list[Rate]:
    at = dt.datetime.combine(day, dt.time(15), dt.UTC)
    return [
        Rate(source, RateKind.REFERENCE, code, value, day, at, (source,), False, base)
        for code, value in values.items()
    ]


@pytest.fixture
async def queries(tmp_path: Path) -> AsyncIterator[RateQueries]:
    store = SqliteRateStore(tmp_path / "rates.sqlite3")
    await store.open()
    await store.write(
        [
            *published(BLEND, MONDAY, "EUR", USD="1.1150", GBP="0.8321", JPY="171.20"),
            *published(BLEND, TUESDAY, "EUR", USD="1.1172", GBP="0.8338"),
            *published("boe", TUESDAY, "GBP", USD="1.3343", EUR="1.1901"),
        ]
    )
    book = LatestRates()
    book.load(await store.latest_reference(BLEND), [])
    try:
        yield RateQueries(store, book, BLEND)
    finally:
        await store.close()


def quoted(rates: tuple[Rate, ...]) -> dict[str, str]:
    return {r.currency: r.value for r in rates}


def field_of(caught: pytest.ExceptionInfo[QueryError]) -> str:
    return caught.value.field


async def test_latest_in_the_pivot_is_the_stored_strings(queries: RateQueries) -> None:
    answer = await queries.latest("EUR", ["USD", "GBP"])
    assert (answer.base, answer.day) == ("EUR", TUESDAY)
    assert quoted(answer.rates) == {"USD": "1.1172", "GBP": "0.8338"}


async def test_latest_against_another_base_is_one_division_rounded_once(queries: RateQueries) -> None:
    answer = await queries.latest("usd", ["EUR", "GBP"])
    assert answer.base == "USD"
    assert quoted(answer.rates) == {"EUR": "0.8950948801", "GBP": "0.746330111"}


async def test_a_currency_missing_on_the_newest_day_keeps_its_own_date(queries: RateQueries) -> None:
    answer = await queries.latest("EUR", [])
    by_code = {r.currency: (r.value, r.day) for r in answer.rates}
    assert by_code["JPY"] == ("171.20", MONDAY)
    assert by_code["USD"] == ("1.1172", TUESDAY)


async def test_historical_answers_the_business_day_on_or_before_the_date(queries: RateQueries) -> None:
    requested, answer = await queries.historical("2026-11-08", "EUR", ["USD"])  # a Sunday
    assert (requested, answer.day) == (dt.date(2026, 11, 8), TUESDAY)
    assert quoted(answer.rates) == {"USD": "1.1172"}
    _, monday = await queries.historical("2026-11-02", "EUR", ["USD"])
    assert quoted(monday.rates) == {"USD": "1.1150"}


async def test_a_publishers_own_figures_come_back_as_published(queries: RateQueries) -> None:
    answer = await queries.latest("GBP", ["USD", "EUR"], source="boe")
    assert quoted(answer.rates) == {"USD": "1.3343", "EUR": "1.1901"}
    assert {r.source for r in answer.rates} == {"boe"}


async def test_timeseries_has_one_entry_per_stored_day(queries: RateQueries) -> None:
    answer = await queries.timeseries("2026-11-01", "2026-11-04", "EUR", ["USD"])
    assert answer.days == {MONDAY: {"USD": "1.1150"}, TUESDAY: {"USD": "1.1172"}}


async def test_convert_uses_the_latest_rate(queries: RateQueries) -> None:
    answer = await queries.convert("EUR", "USD", "100", "")
    assert (answer.rate, answer.day) == ("1.1172", TUESDAY)
    assert Decimal(answer.result) == Decimal("111.72")


@pytest.mark.parametrize(
    ("call", "field", "error"),
    [
        (lambda q: q.latest("EUR", ["XYZ"]), "symbols", InvalidArgument),
        (lambda q: q.latest("XYZ", []), "base", InvalidArgument),
        (lambda q: q.latest("EUR", [], source="nope"), "source", InvalidArgument),
        (lambda q: q.historical("2026-13-01", "EUR", []), "date", InvalidArgument),
        (lambda q: q.historical("2026-10-01", "EUR", []), "date", NotFound),
        (lambda q: q.timeseries("2026-10-01", "2026-10-31", "EUR", []), "end_date", NotFound),
        (lambda q: q.convert("EUR", "USD", "1,5", ""), "amount", InvalidArgument),
    ],
)
async def test_bad_requests_name_their_parameter(
    queries: RateQueries,
    call: Callable[[RateQueries], Awaitable[object]],
    field: str,
    error: type[QueryError],
) -> None:
    with pytest.raises(error) as caught:
        await call(queries)
    assert field_of(caught) == field
