"""python -m kurs_migrate on the sample projects under tests/fixtures/runa: dry run and --apply."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kurs_migrate.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runa"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "legacy_app", tmp_path / "legacy_app"))


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dry_run_reports_and_diffs_without_writing(legacy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(legacy)
    assert main([str(legacy), "--kurs-url", "http://kurs.internal:8000/"]) == 0
    out, err = capsys.readouterr()
    assert snapshot(legacy) == before
    assert "main.runa:7:22: api-endpoint: https://api.example-rates.net/latest" in out
    assert "config/rates.toml:5:13: legacy-url: https://api.exchangerate-api.com/v4/latest/USD" in out
    assert "--- a/main.runa\n+++ b/main.runa\n" in out
    assert '+Let api_endpoint be "http://kurs.internal:8000/runa/v1/rates"\n' in out
    assert '+Let open_url be "http://kurs.internal:8000/v6/latest/USD"\n' in out
    assert err.strip() == "8 finding(s); would rewrite 3 file(s)"


def test_apply_writes_and_a_second_run_finds_only_manual_items(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(legacy), "--apply", "--kurs-url", "http://kurs.internal:8000", "--kurs-key", "k1"]) == 0
    capsys.readouterr()
    main_runa = (legacy / "main.runa").read_text()
    assert 'Let pair_url be "http://kurs.internal:8000/v6/k1/pair/USD/EUR"' in main_runa
    assert "exchangerate-api.com" not in main_runa
    assert 'exchangerate_api_key = "k1"' in (legacy / "config" / "rates.toml").read_text()
    assert main([str(legacy), "--kurs-url", "http://kurs.internal:8000", "--kurs-key", "k1"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "config/rates.toml:5:13: legacy-url: https://api.exchangerate-api.com/v4/latest/USD (review by hand)"
    ]
    assert err.strip() == "1 finding(s); would rewrite 0 file(s)"


def test_migrated_project_has_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(FIXTURES / "migrated_app"), "--kurs-url", "http://kurs.internal:8000"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "0 finding(s); would rewrite 0 file(s)"


def test_module_entry_point(legacy: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kurs_migrate", str(legacy / "main.runa")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "v6-url" in done.stdout
