"""kurs_gateway.routes.dashboard: latency quantiles from histogram buckets, billable requests and
the price-tier lookup of the cost panel."""

from __future__ import annotations

import math
from decimal import Decimal

from kurs_gateway.routes.dashboard import PRICE_TIERS, billable, cost, quantile


def test_quantile_interpolates_like_prometheus_histogram_quantile() -> None:
    buckets = [(0.001, 50.0), (0.01, 90.0), (0.1, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == 0.001  # exactly at a bucket's count
    assert quantile(0.7, buckets) == 0.001 + (0.01 - 0.001) * (70 - 50) / (90 - 50)
    assert quantile(0.99, buckets) == 0.01 + (0.1 - 0.01) * (99 - 90) / 10
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.9, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1  # in +Inf: the last finite bound


def test_only_successful_rate_routes_are_billable() -> None:
    row = {"route": "/rates/latest", "requests": 10, "errors": 1, "rejected": 2}
    assert billable(row) == 7
    assert billable({**row, "route": "/v6/{key}/latest/{base}"}) == 7
    assert billable({**row, "route": "/metrics"}) == 0
    assert billable({**row, "route": "/sources"}) == 0


def test_cost_picks_the_cheapest_published_tier_that_covers_the_volume() -> None:
    by_name = {p["name"]: p for p in cost(0)}
    assert by_name["ExchangeRate-API"]["plan"] == "Free"
    assert by_name["Open Exchange Rates"]["plan"] == "Free"
    by_name = {p["name"]: p for p in cost(10_001)}
    assert (by_name["ExchangeRate-API"]["plan"], by_name["ExchangeRate-API"]["usd_per_month"]) == (
        "Pro",
        "10",
    )
    assert (by_name["Open Exchange Rates"]["plan"], by_name["Open Exchange Rates"]["usd_per_month"]) == (
        "Enterprise",
        "47",
    )
    by_name = {p["name"]: p for p in cost(5_000_000)}
    assert by_name["ExchangeRate-API"]["plan"] == "Volume"
    assert by_name["ExchangeRate-API"]["usd_per_month"] == "58.33"  # $700 a year, exact to the cent
    assert by_name["Open Exchange Rates"]["plan"] == "Unlimited"
    for provider in PRICE_TIERS:  # tiers ascend in volume and price, and every price is exact
        caps = [t.requests_per_month for t in provider.tiers if t.requests_per_month is not None]
        assert caps == sorted(caps)
        assert all(isinstance(t.usd_per_month, Decimal) for t in provider.tiers)
        assert provider.source.startswith("https://")
