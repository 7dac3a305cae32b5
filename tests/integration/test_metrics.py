"""/metrics of every service, scraped from a running mesh (all four services, real gRPC, history
delivered end to end), and its names checked; the dashboard's JSON; and every metric that
deploy/monitoring's alert rules and Grafana dashboard name is one the services export."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from conftest import serve_gateway
from kurs_collector import server as collector_server
from kurs_collector.settings import CollectorSettings
from kurs_rates import server as rates_server
from kurs_rates.settings import RatesSettings
from kurs_validator import server as validator_server
from kurs_validator.settings import ValidatorSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
Samples = dict[str, list[tuple[dict[str, str], float]]]


@dataclass
class MetricsMesh:
    gateway: str
    ports: dict[str, int]  # service -> metrics port


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    rows = [v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items())]
    assert rows, f"{name}{labels} not exported"
    return sum(rows)


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        reply = await client.get(url)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    return parse(reply.text)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, recent_history_zip: Path
) -> AsyncIterator[MetricsMesh]:
    data = tmp_path_factory.mktemp("metrics")
    on = "127.0.0.1:0"
    rates = await rates_server.start(
        RatesSettings(address=on, database_url=f"sqlite:///{data / 'rates.sqlite3'}", metrics_address=on)
    )
    validator = await validator_server.start(
        ValidatorSettings(
            address=on,
            rates_address=f"127.0.0.1:{rates.port}",
            database_url=f"sqlite:///{data / 'validator.sqlite3'}",
            metrics_address=on,
        )
    )
    collector = await collector_server.start(
        CollectorSettings(
            address=on,
            validator_address=f"127.0.0.1:{validator.port}",
            ecb_history_path=recent_history_zip,
            metrics_address=on,
        )
    )
    try:
        health = collector.runner.health["ecb-history"]
        for _ in range(1200):
            if health.state in ("healthy", "failing"):
                break
            await asyncio.sleep(0.05)
        assert health.state == "healthy", health.last_error
        async with serve_gateway(rates.port, collector.port, validator.port) as url:
            assert rates.metrics
            assert validator.metrics
            assert collector.metrics
            ports = {
                "rates": rates.metrics.port,
                "validator": validator.metrics.port,
                "collector": collector.metrics.port,
            }
            yield MetricsMesh(url, ports)
    finally:
        await collector.stop(0)
        await validator.stop(0)
        await rates.stop(0)


async def test_grpc_services_export_rpc_pipeline_and_source_metrics(mesh: MetricsMesh) -> None:
    rates = await scrape(f"http://127.0.0.1:{mesh.ports['rates']}/metrics")
    validator = await scrape(f"http://127.0.0.1:{mesh.ports['validator']}/metrics")
    collector = await scrape(f"http://127.0.0.1:{mesh.ports['collector']}/metrics")

    for name, samples in (("rates", rates), ("validator", validator), ("collector", collector)):
        assert value(samples, "kurs_service_info", service=name) == 1
        assert "process_resident_memory_bytes" in samples

    # rates: ingest calls timed, the gateway's StreamRates subscription open, the book and store.
    assert (
        value(
            rates,
            "rpc_server_call_duration_seconds_count",
            rpc_method="IngestRates",
            rpc_grpc_status_code="OK",
        )
        > 0
    )
    assert value(rates, "rpc_server_active_streams", rpc_method="StreamRates") == 1
    assert value(rates, "rpc_server_stream_messages_sent_total", rpc_method="StreamRates") >= 1
    assert value(rates, "kurs_rates_latest_currencies") >= 25
    assert value(rates, "kurs_rates_sequence") >= 1
    assert value(rates, "kurs_rates_store_up") == 1
    assert value(rates, "kurs_rates_write_buffer_rates") == 0
    assert value(rates, "kurs_rates_latest_observation_age_seconds") > 0
    assert value(rates, "kurs_rates_publish_lag_seconds_count", kind="reference") >= 25
    # validator: batches received from the collector, forwarded to rates, per-source counts.
    submitted = value(validator, "rpc_server_call_duration_seconds_count", rpc_method="SubmitObservations")
    assert submitted > 0
    assert value(validator, "rpc_client_call_duration_seconds_count", rpc_method="IngestRates") > 0
    accepted = value(validator, "kurs_validator_observations_total", source="ecb", outcome="accepted")
    assert accepted > 10_000  # 2024-01-01 onwards, ~30 currencies a day
    assert value(validator, "kurs_validator_source_window_seconds", source="ecb") > 0
    assert "kurs_validator_source_stale" in validator
    # collector: every feed has a state; the history feed is healthy and delivered what was accepted.
    assert value(collector, "kurs_collector_source_state", feed="ecb-history", state="healthy") == 1
    delivered = value(collector, "kurs_collector_source_observations_delivered_total", feed="ecb-history")
    assert delivered >= accepted
    assert value(collector, "kurs_collector_source_freshness_seconds", feed="ecb-history") > 0
    assert value(collector, "kurs_collector_source_consecutive_failures", feed="ecb-history") == 0
    assert (
        value(collector, "kurs_collector_source_last_success_timestamp_seconds", feed="ecb-history") > 1.7e9
    )
    disabled = [
        lbl["feed"] for lbl, v in collector["kurs_collector_source_state"] if lbl["state"] == "disabled" and v
    ]
    assert disabled, "network feeds are disabled in tests and must show as such"


async def test_gateway_metrics_count_every_request_the_fast_path_included(mesh: MetricsMesh) -> None:
    before = await scrape(f"{mesh.gateway}/metrics")
    hits_before = value(before, "kurs_gateway_cache_lookups_total", result="hit")
    async with httpx.AsyncClient(base_url=mesh.gateway) as client:
        for _ in range(50):
            assert (await client.get("/rates/latest", params={"symbols": "EUR"})).status_code == 200
        assert (await client.get("/rates/historical", params={"date": "2025-01-15"})).status_code == 200
        assert (await client.get("/frankfurter/2025-01-15")).status_code == 200
        assert (await client.get("/no/such/route")).status_code == 404
        assert (await client.get("/rates/latest", params={"base": "XXX"})).status_code == 400
        async with connect(mesh.gateway.replace("http", "ws") + "/ws/rates/stream?symbols=USD") as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            during = await scrape(f"{mesh.gateway}/metrics")
    after = await scrape(f"{mesh.gateway}/metrics")

    def requests(samples: Samples, route: str, status: str) -> float:
        rows = samples.get("http_server_request_duration_seconds_count", [])
        return sum(
            v for lbl, v in rows if lbl["http_route"] == route and lbl["http_response_status_code"] == status
        )

    # 50 answers of /rates/latest: at most one built by FastAPI, the rest served by the fast path,
    # all under the route's template.
    assert requests(after, "/rates/latest", "200") - requests(before, "/rates/latest", "200") == 50
    assert value(after, "kurs_gateway_cache_lookups_total", result="hit") - hits_before >= 49
    assert requests(after, "/rates/latest", "400") - requests(before, "/rates/latest", "400") == 1
    assert requests(after, "/frankfurter/{period}", "200") >= 1
    assert requests(after, "(unmatched)", "404") >= 1
    assert (
        value(after, "http_server_request_duration_seconds_bucket", http_route="/rates/latest", le="+Inf")
        >= 50
    )
    # the history answer needed one call to the rates service
    assert value(after, "rpc_client_call_duration_seconds_count", rpc_method="GetHistoricalRates") >= 1
    # the WebSocket client was counted while connected, and its snapshot message
    assert value(during, "kurs_gateway_websocket_connections", http_route="/ws/rates/stream") == 1
    assert value(after, "kurs_gateway_websocket_connections", http_route="/ws/rates/stream") == 0
    assert value(after, "kurs_gateway_websocket_messages_sent_total", http_route="/ws/rates/stream") >= 1
    assert value(after, "kurs_gateway_snapshot_currencies") >= 25
    assert value(after, "kurs_gateway_rates_stream_connected") == 1
    assert value(after, "kurs_gateway_snapshot_age_seconds") > 0
    assert value(after, "kurs_gateway_cache_entries") >= 1


async def test_dashboard_overview_reports_traffic_cache_and_cost(mesh: MetricsMesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.gateway) as client:
        for _ in range(10):
            await client.get("/rates/latest", params={"symbols": "GBP"})
        reply = await client.get("/dashboard/api/overview")
        assert reply.status_code == 200
        body = reply.json()
        assert (await client.get("/dashboard/api/overview", params={"x": "1"})).status_code == 400
        page = await client.get("/dashboard")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in re.findall(r'(?:src|href)="(/dashboard/assets/[^"]+)"', page.text):
            assert (await client.get(asset)).status_code == 200
        assert (await client.get("/dashboard/assets/../app.py")).status_code == 404
    latest = next(r for r in body["routes"] if r["route"] == "/rates/latest" and r["method"] == "GET")
    assert latest["requests"] >= 10
    assert 0 < latest["p50_ms"] <= latest["p99_ms"]
    assert body["rate_requests"] >= latest["requests"] - latest["rejected"] - latest["errors"]
    assert body["upstream_calls_avoided"] == body["rate_requests"] - body["upstream_rates_calls"]
    assert body["cache"]["hits"] > 0
    assert "USD" in body["snapshot"]["currencies"]
    assert {p["name"] for p in body["cost"]["providers"]} == {"ExchangeRate-API", "Open Exchange Rates"}


async def test_alert_rules_and_grafana_name_only_exported_metrics(mesh: MetricsMesh) -> None:
    scraped = [await scrape(f"http://127.0.0.1:{port}/metrics") for port in mesh.ports.values()]
    scraped.append(await scrape(f"{mesh.gateway}/metrics"))
    exported = {name for samples in scraped for name in samples}
    # Families whose samples appear only once something happened (a pool, an anomaly, ...):
    # named in code, checked by their own tests or the dashboard test.
    exported |= {
        "kurs_rates_store_pool_connections",
        "kurs_rates_store_pool_max_connections",
        "kurs_validator_anomalies_total",
    }
    rules = yaml.safe_load((MONITORING / "prometheus" / "kurs-alerts.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    grafana = json.loads((MONITORING / "grafana" / "kurs-dashboard.json").read_text())
    exprs += [t["expr"] for p in grafana["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 30
    names = set()
    for expr in exprs:
        without_strings = re.sub(r'"[^"]*"', '""', expr)
        names |= set(re.findall(r"\b((?:kurs|http|rpc)_[a-z_]+)\b", without_strings))
    label_names = {
        k for samples in scraped for rows in samples.values() for labels, _ in rows for k in labels
    }
    missing = {n for n in names if n not in exported | recorded | label_names}
    assert not missing, f"named in deploy/monitoring but not exported: {sorted(missing)}"
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert {"KursLatencySLOBurnFast", "KursSourceStale", "KursHttpErrorRatioHigh"} <= alerts
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert severities == {"page", "ticket"}
