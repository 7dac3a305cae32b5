"""SqliteFile (kurs_common.sqlite_file): the pragmas every embedded store opens its file with."""

from __future__ import annotations

from pathlib import Path

from kurs_common.sqlite_file import SqliteFile


async def _pragma(store: SqliteFile, name: str) -> object:
    async with store.db.execute(f"PRAGMA {name}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def test_busy_timeout_default_and_setting(tmp_path: Path) -> None:
    default = SqliteFile(tmp_path / "a" / "default.sqlite3")
    await default.connect()
    assert (await _pragma(default, "busy_timeout"), await _pragma(default, "journal_mode")) == (5000, "wal")
    await default.close()
    short = SqliteFile(tmp_path / "short.sqlite3", busy_timeout=0.25)
    await short.connect()
    assert await _pragma(short, "busy_timeout") == 250
    await short.close()
