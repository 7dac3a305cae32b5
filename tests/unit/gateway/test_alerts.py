"""alerts.rules: validation names the field; the evaluator's crossings and moves on real ECB
history match an independent count."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest

from kurs_common.errors import InvalidArgument
from kurs_common.rate import Rate, RateKind
from kurs_gateway.alerts.rules import Evaluator, Rule, parse_rule

AT = dt.datetime(2025, 1, 1, 15, tzinfo=dt.UTC)


def fixings(history_csv: str, first: str, last: str) -> list[tuple[str, dict[str, str]]]:
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    out = []
    for line in reversed(lines[1:]):
        cells = line.split(",")
        if first <= cells[0] <= last:
            rates = {c: v for c, v in zip(header[1:], cells[1:], strict=False) if c and v not in ("", "N/A")}
            out.append((cells[0], rates))
    return out


def entries(rates: dict[str, str]) -> dict[str, Rate]:
    return {c: Rate("", RateKind.REFERENCE, c, v, AT.date(), AT, ("ecb",), False) for c, v in rates.items()}


def rule(**fields: Any) -> Rule:
    return parse_rule({"base": "EUR", "symbol": "USD", **fields}, "k1", None)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "nope", "base": "EUR", "symbol": "USD"}, "kind"),
        ({"kind": "threshold", "base": "EUR", "symbol": "USD"}, "threshold"),
        ({"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": "-1"}, "threshold"),
        ({"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": "1e3"}, "threshold"),
        ({"kind": "threshold", "base": "EUR", "symbol": "XXQ", "threshold": "1"}, "symbol"),
        ({"kind": "threshold", "base": "EUR", "symbol": "EUR", "threshold": "1"}, "symbol"),
        (
            {"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": "1", "direction": "up"},
            "direction",
        ),
        ({"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": 1}, "threshold"),
        ({"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": "1", "x": 1}, "x"),
        (
            {"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": "1", "webhook_url": "ftp://x"},
            "webhook_url",
        ),
        ({"kind": "pct_move", "base": "EUR", "symbol": "USD", "percent": "1"}, "window_seconds"),
        (
            {"kind": "pct_move", "base": "EUR", "symbol": "USD", "percent": "101", "window_seconds": 60},
            "percent",
        ),
        (
            {"kind": "pct_move", "base": "EUR", "symbol": "USD", "percent": "1", "window_seconds": True},
            "window_seconds",
        ),
        ([], "body"),
    ],
)
def test_bad_rules_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_rule(payload, "k1", {"USD", "GBP"})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("base", "symbol", "threshold"), [("EUR", "USD", "1.08"), ("USD", "JPY", "150"), ("GBP", "EUR", "1.19")]
)
def test_threshold_crossings_match_an_independent_count(
    history_csv: str, base: str, symbol: str, threshold: str
) -> None:
    days = fixings(history_csv, "2024-01-01", "2025-12-31")
    evaluator = Evaluator()
    rules = {
        d: parse_rule(
            {"kind": "threshold", "base": base, "symbol": symbol, "threshold": threshold, "direction": d},
            "k",
            None,
        )
        for d in ("above", "below", "either")
    }
    for r in rules.values():
        evaluator.add(r)
    fired: dict[str, list[str]] = {d: [] for d in rules}
    for sequence, (_, rates) in enumerate(days, 1):
        for r, event in evaluator.evaluate(entries(rates), rates.keys(), sequence, float(sequence)):
            fired[r.direction].append(event["direction"])
    # independently: the pair's rate per day, and the days its side of the threshold flips
    per_eur = [{"EUR": Decimal(1), **{c: Decimal(v) for c, v in rates.items()}} for _, rates in days]
    values = [r[symbol] / r[base] for r in per_eur]
    sides = [(v > Decimal(threshold)) - (v < Decimal(threshold)) for v in values]
    ups = sum(1 for a, b in itertools.pairwise(sides) if b > 0 >= a)
    downs = sum(1 for a, b in itertools.pairwise(sides) if b < 0 <= a)
    assert ups + downs > 0  # the thresholds were chosen inside the range
    assert fired["above"] == ["above"] * ups
    assert fired["below"] == ["below"] * downs
    assert sorted(fired["either"]) == sorted(["above"] * ups + ["below"] * downs)


def test_a_change_of_other_currencies_touches_no_rule(history_csv: str) -> None:
    (_, a), (_, b) = fixings(history_csv, "2025-01-02", "2025-01-03")
    evaluator = Evaluator()
    evaluator.add(rule(kind="threshold", threshold="1.0300", direction="either"))
    evaluator.evaluate(entries(a), None, 1, 1.0)
    moved = {**a, "USD": "0.5"}
    assert evaluator.evaluate(entries(moved), {"GBP"}, 2, 2.0) == []  # USD not among the changed codes
    assert len(evaluator.evaluate(entries(moved), {"USD"}, 3, 3.0)) == 1
    del b


def test_pct_move_fires_once_per_excursion_and_rearms() -> None:
    evaluator = Evaluator()
    r = rule(kind="pct_move", percent="1", window_seconds=100, direction="either")
    evaluator.add(r)

    def at(value: str, now: float, sequence: int) -> list[dict[str, Any]]:
        return [e for _, e in evaluator.evaluate(entries({"USD": value}), {"USD"}, sequence, now)]

    assert at("1.0000", 0, 1) == []
    assert at("1.0050", 10, 2) == []  # +0.5 %
    fired = at("1.0100", 20, 3)  # +1 % against the rate 100 s ago (1.0000)
    assert [(e["direction"], e["move_pct"], e["reference_rate"], e["id"]) for e in fired] == [
        ("up", "1", "1", f"{r.id}:3")
    ]
    assert at("1.0150", 30, 4) == []  # still beyond: no second alert for the same excursion
    assert at("1.0200", 200, 5) == []  # the window moved on: against 1.0150 it is +0.49 %; re-armed
    # the rate in effect 100 s earlier (t=110) is 1.0150: 1.0050 is -0.99 %, 1.0040 is -1.08 %
    assert at("1.0050", 210, 6) == []
    assert [e["direction"] for e in at("1.0040", 220, 7)] == ["down"]


def test_webhook_hosts_are_limited_to_the_allowed_ones() -> None:
    loopback = ("127.0.0.1", "localhost", "::1")
    payload = {"kind": "threshold", "base": "EUR", "symbol": "USD", "threshold": "1"}
    ok = parse_rule({**payload, "webhook_url": "http://127.0.0.1:9/hook"}, "k", None, loopback)
    assert ok.webhook_url == "http://127.0.0.1:9/hook"
    for url in ("http://example.com/hook", "http://10.0.0.1/", "http://[::1", "http://127.0.0.1:99999/"):
        with pytest.raises(InvalidArgument) as info:
            parse_rule({**payload, "webhook_url": url}, "k", None, loopback)
        assert info.value.field == "webhook_url"
    assert parse_rule({**payload, "webhook_url": "https://example.com/h"}, "k", None, ["*"]).webhook_url


def test_anomaly_rules_match_their_filters_and_bursts() -> None:
    evaluator = Evaluator()
    every = parse_rule({"kind": "anomaly", "currency": "jpy"}, "k", None)
    stale = parse_rule({"kind": "stale_source", "source": "ECB"}, "k", None)
    burst = parse_rule({"kind": "anomaly", "reason": "outlier", "count": 3, "window_seconds": 60}, "k", None)
    for r in (every, stale, burst):
        evaluator.add(r)

    def fired(anomaly: dict[str, Any], now: float) -> list[str]:
        return sorted(r.id for r, _ in evaluator.anomaly(anomaly, now))

    assert fired({"id": 1, "reason": "inverted", "currency": "JPY", "source": "ecb"}, 0) == [every.id]
    assert fired({"id": 2, "reason": "stale_source", "source": "ecb"}, 1) == [stale.id]
    assert fired({"id": 3, "reason": "stale_source", "source": "boe"}, 2) == []
    outlier = {"reason": "outlier", "currency": "USD", "source": "boe"}
    assert fired({**outlier, "id": 4}, 10) == []
    assert fired({**outlier, "id": 5}, 20) == []
    assert fired({**outlier, "id": 6}, 30) == [burst.id]  # three within 60 s
    assert fired({**outlier, "id": 7}, 40) == []  # the same burst: once
    assert fired({**outlier, "id": 8}, 200) == []  # the burst is over: re-armed
    assert fired({**outlier, "id": 9}, 210) == []
    assert fired({**outlier, "id": 10}, 220) == [burst.id]
    event = evaluator.anomaly({**outlier, "id": 11, "currency": "JPY"}, 230)
    assert [(e["id"], e["anomaly"]["id"]) for _, e in event] == [(f"{every.id}:anomaly:11", 11)]
    assert every.public() == {
        "id": every.id,
        "kind": "anomaly",
        "currency": "JPY",
        "count": 1,
        "created_at": every.created_at,
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "anomaly", "count": 2}, "window_seconds"),
        ({"kind": "anomaly", "count": 0}, "count"),
        ({"kind": "anomaly", "source": "Not a source!"}, "source"),
        ({"kind": "anomaly", "reason": "Outlier!"}, "reason"),
        ({"kind": "stale_source", "currency": "USD"}, "currency"),
        ({"kind": "anomaly", "threshold": "1"}, "threshold"),
    ],
)
def test_bad_anomaly_rules_name_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_rule(payload, "k", None)
    assert info.value.field == field


def test_rules_are_owned_by_a_key_id_or_a_digest_never_the_key() -> None:
    from types import SimpleNamespace

    from starlette.requests import Request as StarletteRequest

    from kurs_gateway.guard import PRINCIPAL
    from kurs_gateway.routes.alerts import api_key

    def request(headers: list[tuple[bytes, bytes]], state: dict[str, object]) -> StarletteRequest:
        scope = {"type": "http", "headers": headers, "query_string": b"", "state": state}
        return StarletteRequest(scope)

    secret = "kurs_abc123_s3cretpart"
    verified = request([(b"x-api-key", secret.encode())], {PRINCIPAL: SimpleNamespace(client="kurs_abc123")})
    assert api_key(verified) == "kurs_abc123"
    unverified = api_key(request([(b"authorization", f"Bearer {secret}".encode())], {}))
    assert unverified.startswith("sha256:")
    assert secret not in unverified
    assert "s3cret" not in unverified
