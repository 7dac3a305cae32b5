"""kurs_common.settings: one base for the fields every service repeats, env names unchanged."""

from __future__ import annotations

import pytest

from kurs_collector.settings import CollectorSettings
from kurs_common.settings import GrpcServiceSettings, ServiceSettings
from kurs_gateway.settings import GatewaySettings
from kurs_rates.settings import RatesSettings
from kurs_validator.settings import ValidatorSettings

SERVICES: list[tuple[type[GrpcServiceSettings], str, str]] = [
    (CollectorSettings, "KURS_COLLECTOR_", "127.0.0.1:50053"),
    (ValidatorSettings, "KURS_VALIDATOR_", "127.0.0.1:50052"),
    (RatesSettings, "KURS_RATES_", "127.0.0.1:50051"),
]


def shared(settings: GrpcServiceSettings) -> tuple[str, str, str, str, float]:
    return (
        settings.log_level,
        settings.otel_exporter,
        settings.otel_endpoint,
        settings.metrics_address,
        settings.shutdown_grace_seconds,
    )


@pytest.mark.parametrize(("cls", "prefix", "address"), SERVICES)
def test_shared_fields_keep_their_defaults(cls: type[GrpcServiceSettings], prefix: str, address: str) -> None:
    settings = cls()
    assert isinstance(settings, ServiceSettings)
    assert shared(settings) == ("INFO", "none", "", "", 5.0)
    assert settings.model_dump()["address"] == address


@pytest.mark.parametrize(("cls", "prefix", "address"), SERVICES)
def test_shared_fields_are_read_under_each_services_prefix(
    cls: type[GrpcServiceSettings], prefix: str, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(prefix + "LOG_LEVEL", "DEBUG")
    monkeypatch.setenv(prefix + "OTEL_EXPORTER", "console")
    monkeypatch.setenv(prefix + "OTEL_ENDPOINT", "127.0.0.1:4317")
    monkeypatch.setenv(prefix + "METRICS_ADDRESS", "127.0.0.1:9464")
    monkeypatch.setenv(prefix + "SHUTDOWN_GRACE_SECONDS", "12.5")
    monkeypatch.setenv("KURS_OTHER_LOG_LEVEL", "ERROR")  # another prefix is ignored
    assert shared(cls()) == ("DEBUG", "console", "127.0.0.1:4317", "127.0.0.1:9464", 12.5)


def test_the_gateway_shares_logging_tracing_and_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(GatewaySettings(), ServiceSettings)
    assert not isinstance(GatewaySettings(), GrpcServiceSettings)  # its metrics are on its HTTP port
    monkeypatch.setenv("KURS_GATEWAY_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("KURS_GATEWAY_OTEL_EXPORTER", "console")
    monkeypatch.setenv("KURS_GATEWAY_SHUTDOWN_GRACE_SECONDS", "20")
    settings = GatewaySettings()
    assert (settings.log_level, settings.otel_exporter, settings.shutdown_grace_seconds) == (
        "DEBUG",
        "console",
        20,
    )


def test_the_unprefixed_base_takes_no_service_s_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURS_RATES_LOG_LEVEL", "DEBUG")
    assert ServiceSettings().log_level == "INFO"


def test_rates_keeps_its_shared_database_and_redis_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KURS_DATABASE_URL", "postgresql://root@127.0.0.1/test")
    monkeypatch.setenv("KURS_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("KURS_RATES_SHUTDOWN_GRACE_SECONDS", "1")
    settings = RatesSettings()
    assert (settings.database_url, settings.redis_url, settings.shutdown_grace_seconds) == (
        "postgresql://root@127.0.0.1/test",
        "redis://127.0.0.1:6379/0",
        1.0,
    )
