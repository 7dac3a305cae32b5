"""ClientConfig: endpoint lists per region from the environment, the caller's region first."""

from __future__ import annotations

import pytest

from kurs_client import ClientConfig, Endpoint, InvalidArgumentError
from kurs_client.config import parse_endpoints


def test_endpoints_with_and_without_regions() -> None:
    expected = (Endpoint("a:1", "eu"), Endpoint("b:2"), Endpoint("c:3", "us"))
    assert parse_endpoints(" eu=a:1, b:2 ,us=c:3,") == expected


def test_from_env_orders_the_callers_region_first() -> None:
    config = ClientConfig.from_env(
        {
            "KURS_CLIENT_ENDPOINTS": "eu-west=e1:50051,us-east=u1:50051,eu-west=e2:50051",
            "KURS_CLIENT_REGION": "us-east",
            "KURS_CLIENT_TIMEOUT_SECONDS": "2.5",
            "KURS_CLIENT_CACHE_SECONDS": "60",
            "KURS_CLIENT_EXCHANGERATE_API_KEY": "k",
        }
    )
    assert [e.address for e in config.ordered_endpoints()] == ["u1:50051", "e1:50051", "e2:50051"]
    assert (config.timeout, config.cache_seconds, config.exchangerate_api_key) == (2.5, 60.0, "k")
    assert config.transport == "grpc"


def test_defaults_follow_the_issue() -> None:
    config = ClientConfig((Endpoint("a:1"),))
    assert config.cache_seconds == 30 * 60
    assert config.exchangerate_api_url == "https://v6.exchangerate-api.com"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({}, "endpoints"),
        ({"KURS_CLIENT_ENDPOINTS": "a:1", "KURS_CLIENT_TRANSPORT": "soap"}, "transport"),
        ({"KURS_CLIENT_ENDPOINTS": "a", "KURS_CLIENT_TIMEOUT_SECONDS": "x"}, "KURS_CLIENT_TIMEOUT_SECONDS"),
    ],
)
def test_bad_configuration_names_the_setting(env: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as failure:
        ClientConfig.from_env(env)
    assert failure.value.field == field
