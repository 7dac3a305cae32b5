"""open_store (kurs_rates.server): the store of a database URL, built with the service's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from kurs_rates.pg_store import PostgresRateStore
from kurs_rates.server import open_store
from kurs_rates.settings import RatesSettings
from kurs_rates.sqlite_store import SqliteRateStore


def test_sqlite_store_takes_the_busy_timeout(tmp_path: Path) -> None:
    settings = RatesSettings(sqlite_busy_timeout_seconds=2.5)
    store = open_store(f"sqlite:///{tmp_path / 'r.sqlite3'}", settings)
    assert isinstance(store, SqliteRateStore)
    assert (store.path, store.busy_timeout) == (tmp_path / "r.sqlite3", 2.5)
    assert open_store(f"sqlite:///{tmp_path / 'd.sqlite3'}").busy_timeout == 5.0  # type: ignore[attr-defined]


def test_postgres_store_takes_the_timeouts() -> None:
    settings = RatesSettings(pg_close_timeout=1.5, pg_statement_timeout=4.0, pg_connect_timeout=3.0)
    store = open_store("postgresql://kurs@127.0.0.1:1/kurs", settings)  # not opened: no connection
    assert isinstance(store, PostgresRateStore)
    assert (store.close_timeout, store.statement_timeout, store.connect_timeout) == (1.5, 4.0, 3.0)


def test_close_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURS_RATES_PG_CLOSE_TIMEOUT", "0.5")
    monkeypatch.setenv("KURS_RATES_SQLITE_BUSY_TIMEOUT_SECONDS", "7")
    settings = RatesSettings()
    assert (settings.pg_close_timeout, settings.sqlite_busy_timeout_seconds) == (0.5, 7.0)


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        open_store("mysql://x")
