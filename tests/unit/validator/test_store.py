"""The SQLite store: idempotent anomalies, paging, quality records, retention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from unit.validator.helpers import NOW, business_days, engine, fixing, run

from kurs_common.observation import Observation
from kurs_validator.model import Anomaly, Confidence, Contribution, QualityRecord
from kurs_validator.server import build_store
from kurs_validator.settings import ValidatorSettings
from kurs_validator.store import AnomalyFilter, Retention, ValidatorStore


def _store(tmp_path: Path, retention: Retention | None = None) -> ValidatorStore:
    store = ValidatorStore(f"sqlite:///{tmp_path / 'v.sqlite3'}", retention)
    store.open()
    return store


def _anomaly(i: int, reason: str = "outlier", currency: str = "USD", detected: dt.datetime = NOW) -> Anomaly:
    return Anomaly(
        reason=reason,
        detail=f"detail {i}",
        observation=Observation(
            source="ecb",
            feed="ecb-daily",
            kind="reference",
            base="EUR",
            quote=currency,
            value=f"1.{i}",
            day=f"2026-11-{10 + i:02d}",
            observed_at=dt.datetime(2026, 11, 10 + i, 14, tzinfo=dt.UTC),
        ),
        currency=currency,
        expected="1.1",
        detected_at=detected,
    )


def test_anomalies_are_stored_once_and_paged_newest_first(tmp_path: Path) -> None:
    store = _store(tmp_path)
    new = store.write([_anomaly(i) for i in range(5)], [])
    assert [a.id for a in new] == [1, 2, 3, 4, 5]
    assert store.write([_anomaly(i) for i in range(5)], []) == []  # a re-run adds nothing
    page = store.list_anomalies(AnomalyFilter(), 2, None)
    assert [a.id for a in page] == [5, 4]
    assert [a.id for a in store.list_anomalies(AnomalyFilter(), 2, page[-1].id)] == [3, 2]
    assert store.list_anomalies(AnomalyFilter(), 10, None)[0] == new[-1]
    assert [a.id for a in store.anomalies_after(AnomalyFilter(), 3, 10)] == [4, 5]
    store.close()


def test_anomaly_filters(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write(
        [_anomaly(1, "inverted", "GBP"), _anomaly(2, "outlier", "USD"), _anomaly(3, "jump", "GBP")], []
    )
    assert [a.id for a in store.list_anomalies(AnomalyFilter(currency="GBP"), 10, None)] == [3, 1]
    assert [a.id for a in store.list_anomalies(AnomalyFilter(reason="outlier"), 10, None)] == [2]
    window = AnomalyFilter(start_day="2026-11-12", end_day="2026-11-13")
    assert [a.id for a in store.list_anomalies(window, 10, None)] == [3, 2]
    assert AnomalyFilter(currency="GBP", reason="jump").matches(_anomaly(3, "jump", "GBP"))
    assert not AnomalyFilter(source="boe").matches(_anomaly(3))
    store.close()


def test_quality_records_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    days = business_days(3)
    outcomes = run(engine(), [[fixing(s, "USD", "1.10", d) for s in ("ecb", "boe")] for d in days])
    store.write([], [q for o in outcomes for q in o.quality])
    outcomes = run(engine(), [[fixing("ecb", "JPY", "160.1", days[0])]])
    store.write([], outcomes[0].quality)
    record = store.get_quality("reference", "USD", days[1].isoformat())
    assert record is not None
    assert record.day == days[1]
    assert [c.source for c in record.contributors] == ["boe", "ecb"]
    assert record.confidence is Confidence.MEDIUM
    single = store.get_quality("reference", "JPY", None)
    assert single == outcomes[0].quality[0]
    # A date without a fixing answers with the last one before it; none before: nothing.
    later = store.get_quality("reference", "USD", (days[-1] + dt.timedelta(days=3)).isoformat())
    assert later is not None
    assert later.day == days[-1]
    assert store.get_quality("reference", "USD", "2020-01-01") is None
    assert store.get_quality("live", "USD", None) is None
    store.close()


def test_retention(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        Retention(
            anomalies=dt.timedelta(days=30),
            anomaly_max_rows=2,
            live_quality=dt.timedelta(hours=1),
            reference_quality=dt.timedelta(days=365),
        ),
    )
    old = NOW - dt.timedelta(days=31)
    store.write([_anomaly(1, detected=old), *[_anomaly(i) for i in range(2, 6)]], [])

    def record(kind: str, at: dt.datetime) -> QualityRecord:
        c = Contribution("ecb", "1.1", "1.1", at, 1.0, "")
        return QualityRecord(
            kind, "USD", at.date(), at, "1.1", "ecb", (c,), (), "0", "1.1", at, 0.0, Confidence.LOW, at
        )

    store.write(
        [],
        [
            record("live", NOW - dt.timedelta(hours=2)),
            record("live", NOW - dt.timedelta(minutes=5)),
            record("reference", NOW - dt.timedelta(days=400)),
            record("reference", NOW - dt.timedelta(days=4)),
        ],
    )
    assert store.purge(NOW) == 1 + 2 + 1 + 1
    assert [a.id for a in store.list_anomalies(AnomalyFilter(), 10, None)] == [5, 4]
    assert store.count_quality() == 2
    store.close()


def test_busy_timeout_is_the_settings(tmp_path: Path) -> None:
    default = _store(tmp_path)
    assert default._conn().execute("PRAGMA busy_timeout").fetchone() == (30_000,)
    default.close()
    store = build_store(
        ValidatorSettings(database_url=f"sqlite:///{tmp_path / 'b.sqlite3'}", sqlite_busy_timeout_seconds=2.5)
    )
    store.open()
    assert store._conn().execute("PRAGMA busy_timeout").fetchone() == (2_500,)
    store.close()
