from __future__ import annotations

import argparse

from kurs_common.mesh import build_env, first_api_key


def test_first_api_key() -> None:
    assert first_api_key({"KURS_GATEWAY_API_KEYS": '["k1", "k2"]'}) == "k1"
    assert first_api_key({}) is None
    assert first_api_key({"KURS_GATEWAY_API_KEYS": "not json"}) is None


def test_build_env_derives_addresses_and_keeps_explicit_settings() -> None:
    args = argparse.Namespace(
        data_dir="/tmp/x", gateway_port=1, rates_port=2, validator_port=3, collector_port=4, stream_port=5
    )
    env = build_env(args, {"KURS_GATEWAY_HOST": "0.0.0.0", "KURS_DATABASE_URL": "postgresql://db/kurs"})
    assert env["KURS_VALIDATOR_RATES_ADDRESS"] == "127.0.0.1:2"
    assert env["KURS_GATEWAY_VALIDATOR_ADDRESS"] == "127.0.0.1:3"
    assert env["KURS_GATEWAY_STREAM_PORT"] == "5"
    assert env["KURS_GATEWAY_HOST"] == "0.0.0.0"  # an explicit setting wins
    assert "KURS_RATES_DATABASE_URL" not in env  # KURS_DATABASE_URL is used instead
