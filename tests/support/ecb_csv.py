"""What a test's ECB history CSV publishes: one day's rates, or one currency's series."""

from __future__ import annotations

import datetime as dt


def published(history_csv: str, day: str) -> dict[str, str]:
    """Every rate the history CSV publishes on `day`, as written (currency -> decimal string)."""
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    row = next(line for line in lines if line.startswith(day)).split(",")
    return {c: v for c, v in zip(header[1:], row[1:], strict=False) if c and v and v != "N/A"}


def published_series(
    history_csv: str, currency: str, first: str = "1999-01-01", last: str = "9999-12-31"
) -> list[tuple[dt.date, str]]:
    """Units of `currency` per EUR as published, oldest first, between first and last inclusive."""
    lines = history_csv.splitlines()
    column = lines[0].split(",").index(currency)
    points = []
    for line in lines[1:]:
        cells = line.split(",")
        if first <= cells[0] <= last and cells[column] not in ("", "N/A"):
            points.append((dt.date.fromisoformat(cells[0]), cells[column]))
    points.sort()
    return points
