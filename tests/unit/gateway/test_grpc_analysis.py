"""kurs_gateway.grpc_analysis without servers: the answers' bodies as typed responses (null as
an absent optional field, REST's order kept) and no listener while API keys are required."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from kurs_gateway import grpc_analysis
from kurs_gateway.settings import GatewaySettings


def _head(**extra: Any) -> dict[str, Any]:
    return {"base": "EUR", "start_date": "2025-01-01", "end_date": "2025-01-10", "sources": ["ecb"], **extra}


def test_volatility_without_enough_returns_has_no_volatility() -> None:
    body = _head(
        window=5,
        annualisation_days=252,
        numeric="float64",
        rates={
            "USD": {"observations": 2, "returns": 1, "volatility": None, "rolling": {}},
            "GBP": {"observations": 9, "returns": 9, "volatility": 0.071, "rolling": {"2025-01-10": 0.08}},
        },
        missing=["JPY"],
    )
    reply = grpc_analysis.volatility_response(body)
    assert [r.currency for r in reply.rates] == ["USD", "GBP"]
    assert not reply.rates[0].HasField("volatility")
    assert reply.rates[1].volatility == 0.071
    assert [(p.date, p.volatility) for p in reply.rates[1].rolling] == [("2025-01-10", 0.08)]
    assert list(reply.missing) == ["JPY"]


def test_trend_before_the_windows_fill_has_no_averages() -> None:
    point = {"fast": None, "slow": None}
    body = _head(
        kind="sma",
        fast_window=2,
        slow_window=50,
        rates={
            "USD": {
                "direction": None,
                "last_date": "2025-01-10",
                "rate": "1.03",
                "fast": "1.0301",
                "slow": None,
                "series": {"2025-01-09": point, "2025-01-10": {"fast": "1.0301", "slow": None}},
            }
        },
    )
    trend = grpc_analysis.trend_response(body).rates[0]
    assert trend.direction == ""
    assert trend.fast == "1.0301"
    assert not trend.HasField("slow")
    assert [p.date for p in trend.series] == ["2025-01-09", "2025-01-10"]
    assert not trend.series[0].HasField("fast")


def test_ohlc_bars_keep_every_figure() -> None:
    bar = {
        "period_start": "2025-01-06",
        "first_date": "2025-01-06",
        "open": "1.03",
        "high": "1.0412",
        "low": "1.0290",
        "close": "1.04",
        "last_date": "2025-01-10",
        "count": 5,
    }
    reply = grpc_analysis.ohlc_response(_head(interval="1w", rates={"USD": [bar]}), final=True)
    got = reply.rates[0].bars[0]
    assert {k: getattr(got, k) for k in bar} == bar
    assert reply.final


@pytest.mark.parametrize("keys", [{"auth": "keys"}, {"api_keys": ["k1"]}])
async def test_no_listener_while_keys_are_required(keys: dict[str, Any]) -> None:
    settings = GatewaySettings(grpc_address="127.0.0.1:0", **keys)
    with pytest.raises(RuntimeError, match="KURS_GATEWAY_GRPC_ADDRESS"):
        await grpc_analysis.start(settings, stub=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("upstream", "details", "code", "text"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "base: unknown currency XXX", None, "base: unknown currency XXX"),
        (grpc.StatusCode.NOT_FOUND, "symbols: no rates", None, "symbols: no rates"),
        (grpc.StatusCode.UNAVAILABLE, "connect failed", None, "rates service unavailable: connect failed"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", None, "rates service did not answer in time"),
        (
            grpc.StatusCode.UNAUTHENTICATED,
            "token",
            grpc.StatusCode.INTERNAL,
            "rates service error: UNAUTHENTICATED",
        ),
    ],
)
def test_rates_service_failures_map_like_rest(
    upstream: grpc.StatusCode, details: str, code: grpc.StatusCode | None, text: str
) -> None:
    error = grpc.aio.AioRpcError(upstream, grpc.aio.Metadata(), grpc.aio.Metadata(), details)
    assert grpc_analysis._upstream(error) == (code or upstream, text)
