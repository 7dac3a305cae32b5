"""routes/bulk: item checks, exact conversion on a real ECB fixing, order and per-item problems."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import orjson
import pytest

from kurs_common.errors import InvalidArgument
from kurs_common.rate import Rate, RateKind
from kurs_gateway.routes import bulk

TEN = Context(prec=10, rounding=ROUND_HALF_EVEN)
WIDE = Context(prec=60)


def fixing(history_csv: str, day: str) -> dict[str, Rate]:
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    row = next(line for line in lines if line.startswith(day)).split(",")
    at = dt.datetime.fromisoformat(f"{day}T15:00:00+00:00")
    return {
        code: Rate("", RateKind.REFERENCE, code, value, dt.date.fromisoformat(day), at, ("ecb",), False)
        for code, value in zip(header[1:], row[1:], strict=False)
        if code and value not in ("", "N/A")
    }


def expected(amount: str, src: str, dst: str, rates: dict[str, Rate]) -> tuple[str, str]:
    """The rate (10 significant digits) and result (6 places), computed here independently."""
    per_eur = {"EUR": Decimal(1), **{c: Decimal(e.value) for c, e in rates.items()}}
    if src == dst:
        rate = Decimal(1)
    elif src == "EUR":
        rate = per_eur[dst]
    else:
        rate = TEN.divide(per_eur[dst], per_eur[src])
    result = WIDE.multiply(Decimal(amount), rate).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    rate_text = rates[dst].value if src == "EUR" and dst != "EUR" else format(rate, "f")
    return rate_text, format(result, "f")


async def collect(items: list[Any], latest: dict[str, Rate] | None) -> list[dict[str, Any]]:
    dated = bulk.DatedRates(None, 1.0)  # type: ignore[arg-type]  # no dated item here
    out = b"".join([chunk async for chunk in bulk.results(items, latest, dated)])
    return [orjson.loads(line) for line in out.splitlines()]


async def test_every_pair_matches_an_independent_computation(history_csv: str) -> None:
    rates = fixing(history_csv, "2025-01-17")
    codes = ["EUR", "USD", "JPY", "GBP", "CHF", "HUF"]
    items = [{"amount": "1234.5678", "from": a, "to": b} for a in codes for b in codes]
    lines = await collect(items, rates)
    assert [line["index"] for line in lines] == list(range(len(items)))
    for item, line in zip(items, lines, strict=True):
        rate, result = expected(item["amount"], item["from"], item["to"], rates)
        assert line["status"] == 200, line
        assert Decimal(line["rate"]) == Decimal(rate)
        assert Decimal(line["result"]) == Decimal(result), (item, line)
        assert line["date"] == "2025-01-17"


async def test_bad_items_get_their_own_problem_and_never_fail_the_batch(history_csv: str) -> None:
    rates = fixing(history_csv, "2025-01-17")
    items: list[Any] = [
        {"amount": "100", "from": "USD", "to": "EUR"},
        {"amount": "-1", "from": "USD", "to": "EUR"},
        {"amount": "1e3", "from": "USD", "to": "EUR"},
        {"amount": "100", "from": "XXQ", "to": "EUR"},
        {"amount": "100", "from": "USD", "to": "CYP"},
        {"amount": "100", "from": "USD"},
        {"amount": "100", "from": "USD", "to": "EUR", "note": "x"},
        "not an object",
        {"amount": True, "from": "USD", "to": "EUR"},
        {"amount": "100", "from": "USD", "to": "EUR", "date": "2025-02-30"},
        {"amount": "0.000000001", "from": "USD", "to": "EUR"},
        {"amount": "100", "from": "usd", "to": "eur"},
    ]
    lines = await collect(items, rates)
    named = [
        line["problem"]["invalid_params"][0]["name"] if line["status"] != 200 else None for line in lines
    ]
    assert named == [
        None,
        "amount",
        "amount",
        "from",
        "to",
        "to",
        "note",
        "item",
        "amount",
        "date",
        "amount",
        None,
    ]
    assert all(line["status"] in (200, 400) for line in lines)
    assert lines[0]["result"] == lines[-1]["result"]


async def test_no_snapshot_yet_is_a_503_per_item() -> None:
    lines = await collect([{"amount": "1", "from": "USD", "to": "EUR"}], None)
    assert lines[0]["status"] == 503


def test_numbers_keep_their_exact_text() -> None:
    items = bulk.parse_items(
        b'[{"amount": 0.1000000000000000055511151231257827, "from": "USD", "to": "EUR"}]'
    )
    assert items[0]["amount"] == "0.1000000000000000055511151231257827"
    amount, *_ = bulk.check_item({"amount": "12.50", "from": "usd", "to": "eur"})
    assert amount == "12.5"


@pytest.mark.parametrize(
    "body",
    [b"{}", b"[]", b"not json", b"[1,", b'[{"amount": NaN}]', orjson.dumps([{}] * (bulk.MAX_ITEMS + 1))],
)
def test_a_body_that_is_not_a_bounded_array_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidArgument) as info:
        bulk.parse_items(body)
    assert info.value.field == "body"


async def test_repeated_pairs_and_rate_sets_are_computed_once_with_the_same_answers(
    history_csv: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, other = fixing(history_csv, "2025-01-15"), fixing(history_csv, "2025-01-16")
    calls: list[tuple[str, str]] = []
    real = bulk.pair_rate

    def counted(src: str, dst: str, rates: bulk.Rates) -> tuple[str, str, list[str]]:
        calls.append((src, dst))
        return real(src, dst, rates)

    monkeypatch.setattr(bulk, "pair_rate", counted)
    pairs = bulk.PairRates()
    for amount in ("1", "2.5", "100"):
        for rates in (one, other):  # two rate sets, never mixed up
            got = bulk.convert_one(amount, "USD", "GBP", rates, pairs)
            rate, result = expected(amount, "USD", "GBP", rates)
            assert (got["rate"], got["result"], got["date"]) == (
                rate,
                result,
                next(iter(rates.values())).day.isoformat(),
            )
    assert calls == [("USD", "GBP"), ("USD", "GBP")]  # once per rate set
    for _ in range(2):  # a problem is remembered too, and raised afresh for every item
        with pytest.raises(bulk.ItemProblem) as caught:
            bulk.convert_one("1", "USD", "XAU", one, pairs)
        assert (caught.value.status, caught.value.field) == (400, "to")
    assert calls[-1] == ("USD", "XAU")
    assert len(calls) == 3


def test_checked_codes_and_dates_are_remembered_and_bad_ones_refused_every_time() -> None:
    valid: dict[tuple[str, str], str] = {}
    item = {"amount": "1", "from": "usd", "to": "EUR", "date": "2025-01-15"}
    assert bulk.check_item(item, valid) == ("1", "USD", "EUR", "2025-01-15")
    assert bulk.check_item(item, valid) == ("1", "USD", "EUR", "2025-01-15")
    assert valid[("from", "usd")] == "USD"
    for _ in range(2):
        with pytest.raises(bulk.ItemProblem) as caught:
            bulk.check_item({**item, "date": "2025-02-30"}, valid)
        assert caught.value.field == "date"
        with pytest.raises(bulk.ItemProblem) as caught:
            bulk.check_item({**item, "to": "E1R"}, valid)
        assert caught.value.field == "to"
