"""Which /rates/timeseries query strings the series front answers itself (the rest go to FastAPI)."""

from __future__ import annotations

from kurs_gateway.series_front import plain_request


def test_only_plain_query_strings_are_taken() -> None:
    taken = plain_request(b"start_date=2024-01-02&end_date=2024-02-02&base=usd&symbols=EUR,JPY&symbols=GBP")
    assert taken is not None
    assert (taken.base, list(taken.symbols)) == ("USD", ["EUR", "JPY", "GBP"])
    for query in (
        b"start_date=2024-01-02&end_date=2024-02-02&base=%20USD",  # the route strips; the front does not try
        b"start_date=2024-01-02&end_date=2024-02-02&bse=USD",  # unknown parameter
        b"start_date=2024-01-02&end_date=2024-02-02&base=USD&base=EUR",  # given twice
        b"start_date=2024-01-02",  # end_date missing
        b"start_date=2024-02-02&end_date=2024-01-02",  # reversed range
        b"start_date=2024-01-02&end_date=2024-02-02%0A",  # a trailing newline
        b"start_date=%D9%A2024-01-02&end_date=2024-02-02",  # a non-ASCII digit
        b"start_date=2024-01-02&end_date=2024-02-02&source=b%20oe",
    ):
        assert plain_request(query) is None, query
