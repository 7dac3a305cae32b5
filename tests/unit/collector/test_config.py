"""The one sources file: parsing, the live switch, per-source enable."""

from __future__ import annotations

from pathlib import Path

import pytest

from kurs_collector.config import ConfigError, load_sources, parse_sources
from kurs_collector.feeds.registry import ADAPTERS
from kurs_collector.settings import CollectorSettings
from kurs_collector.sources import LIVE_OFF, build_network_feeds

SHIPPED = Path(__file__).resolve().parents[3] / "config" / "sources.toml"


def test_shipped_file_is_valid_and_live_is_off() -> None:
    sources = load_sources(SHIPPED)
    assert sources.live is False
    assert set(sources.sources) <= set(ADAPTERS)
    for config in sources.sources.values():
        assert config.base_url.startswith("https://"), config.id
    assert sources.sources["ecb-daily"].timeout_seconds == 15


async def test_live_off_disables_every_network_feed() -> None:
    network = build_network_feeds(CollectorSettings(sources_file=SHIPPED))
    try:
        assert network.feeds
        assert not [feed.id for feed, enabled in network.feeds if enabled]
        assert set(network.disabled_reasons.values()) == {LIVE_OFF}
    finally:
        await network.aclose()


async def test_live_switch_turns_on_only_enabled_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURS_COLLECTOR_LIVE", "true")
    network = build_network_feeds(CollectorSettings(sources_file=SHIPPED))
    try:
        enabled = {feed.id for feed, on in network.feeds if on}
        assert "ecb-daily" in enabled
        assert "fed-fred" not in enabled
        assert network.disabled_reasons["fed-fred"] == "enabled = false in the sources file"
    finally:
        await network.aclose()


def test_sources_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'live = true\n[sources.x]\nadapter = "boc"\nenabled = true\nbase_url = "http://127.0.0.1:1/"\n'
    )
    monkeypatch.setenv("KURS_COLLECTOR_SOURCES_FILE", str(path))
    settings = CollectorSettings()
    assert settings.sources_file == path
    sources = load_sources(path)
    assert sources.sources["x"].base_url == "http://127.0.0.1:1"


def test_defaults_apply_and_sources_override() -> None:
    data = {
        "defaults": {"timeout_seconds": 3, "retries": 2},
        "sources": {"boe": {"base_url": "http://h", "retries": 5, "series": ["XUDLUSS"]}},
    }
    config = parse_sources(data).sources["boe"]
    assert (config.adapter, config.timeout_seconds, config.retries, config.enabled) == ("boe", 3, 5, False)
    assert config.option("series") == ["XUDLUSS"]


def test_ws_close_timeout_is_a_source_setting() -> None:
    data = {
        "defaults": {"ws_close_timeout_seconds": 2.5},
        "sources": {
            "kraken-ws": {"base_url": "http://h"},
            "coinbase-ws": {"base_url": "http://h", "ws_close_timeout_seconds": 0.5},
        },
    }
    sources = parse_sources(data).sources
    assert (
        sources["kraken-ws"].ws_close_timeout_seconds,
        sources["coinbase-ws"].ws_close_timeout_seconds,
    ) == (2.5, 0.5)
    assert (
        parse_sources({"sources": {"x": {"base_url": "http://h"}}}).sources["x"].ws_close_timeout_seconds
        == 1.0
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sources": {"x": {"enabled": True}}}, "base_url"),
        ({"sources": {"x": {"base_url": "http://h", "retries": 0}}}, "retries"),
        (
            {"sources": {"x": {"base_url": "http://h", "ws_close_timeout_seconds": 0}}},
            "ws_close_timeout_seconds",
        ),
        ({"sources": {"x": "nope"}}, "must be a table"),
    ],
)
def test_invalid_entries(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        parse_sources(data)


async def test_unknown_adapter_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[sources.x]\nadapter = "nope"\nbase_url = "http://h"\n')
    with pytest.raises(ConfigError, match="unknown adapter 'nope'"):
        build_network_feeds(CollectorSettings(sources_file=path))


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such sources file"):
        load_sources(tmp_path / "none.toml")
    broken = tmp_path / "b.toml"
    broken.write_text("live = [")
    with pytest.raises(ConfigError):
        load_sources(broken)
