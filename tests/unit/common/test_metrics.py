"""kurs_common.metrics (registries, helpers, the /metrics endpoint) and the exporter choice in
kurs_common.telemetry."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from prometheus_client.parser import text_string_to_metric_families

from kurs_common import telemetry
from kurs_common.metrics import (
    MetricsEndpoint,
    ServiceMetrics,
    attach_metrics_endpoint,
    gauge,
    labelled_counter,
    labelled_gauge,
    split_method,
    start_metrics_endpoint,
    status_name,
)


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_split_method_and_status_names() -> None:
    assert split_method("/kurs.rates.v1.RatesService/GetLatestRates") == (
        "kurs.rates.v1.RatesService",
        "GetLatestRates",
    )
    assert split_method("garbage") == ("unknown", "garbage")
    assert status_name(None) == "OK"
    assert status_name(grpc.StatusCode.NOT_FOUND) == "NOT_FOUND"
    assert status_name(3) == "INVALID_ARGUMENT"
    assert status_name(999) == "UNKNOWN"


def test_each_service_has_its_own_registry() -> None:
    # Four services run in one test process: the same metric names must not collide.
    a, b = ServiceMetrics("rates", process=False), ServiceMetrics("gateway", process=False)
    a.server_duration.labels("grpc", "S", "M", "OK").observe(0.002)
    text_a, text_b = a.exposition().decode(), b.exposition().decode()
    count = families(text_a)["rpc_server_call_duration_seconds_count"]
    assert count == [
        ({"rpc_system": "grpc", "rpc_service": "S", "rpc_method": "M", "rpc_grpc_status_code": "OK"}, 1.0)
    ]
    assert "rpc_server_call_duration_seconds_count{" not in text_b
    assert families(text_b)["kurs_service_info"] == [({"service": "gateway"}, 1.0)]


def test_callbacks_are_read_at_scrape_time_and_a_broken_one_is_skipped() -> None:
    metrics = ServiceMetrics("collector", process=False)
    state = {"value": 1.0}
    metrics.add_callback(lambda: [gauge("kurs_test_value", "a value", state["value"])])
    metrics.add_callback(
        lambda: [
            labelled_gauge(
                "kurs_test_by_source", "per source", ["source"], [(("ecb",), 2.0), (("boe",), 3.0)]
            ),
            labelled_counter("kurs_test_events", "events", ["kind"], [(("x",), 4.0)]),
        ]
    )

    def broken() -> list[object]:
        raise RuntimeError("boom")

    metrics.add_callback(broken)  # type: ignore[arg-type]
    state["value"] = 7.5
    parsed = families(metrics.exposition().decode())
    assert parsed["kurs_test_value"] == [({}, 7.5)]
    assert sorted(v for _, v in parsed["kurs_test_by_source"]) == [2.0, 3.0]
    assert parsed["kurs_test_events_total"] == [({"kind": "x"}, 4.0)]


async def _request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_metrics_endpoint_serves_the_exposition_on_its_own_port() -> None:
    metrics = ServiceMetrics("validator")
    endpoint = await start_metrics_endpoint("127.0.0.1:0", metrics)
    try:
        ok = await _request(endpoint.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = ok.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"text/plain; version=" in head
        parsed = families(body.decode())
        assert parsed["kurs_service_info"] == [({"service": "validator"}, 1.0)]
        assert "process_cpu_seconds_total" in parsed  # the process collector is on by default
        assert (await _request(endpoint.port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await _request(endpoint.port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
    finally:
        await endpoint.stop()


def test_exporters_by_setting() -> None:
    assert telemetry.build_exporter("none") is None
    assert isinstance(telemetry.build_exporter("console"), ConsoleSpanExporter)
    otlp = telemetry.build_exporter("otlp", "127.0.0.1:4317")
    assert isinstance(otlp, OTLPSpanExporter)
    otlp.shutdown()
    with pytest.raises(ValueError, match="otel_exporter"):
        telemetry.build_exporter("jaeger")
    assert telemetry.endpoint_variable("kurs-rates") == "KURS_RATES_OTEL_ENDPOINT"


def test_trace_context_is_read_from_asgi_headers_only_from_propagation_headers() -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    ctx = telemetry.extract_headers(
        [(b"Traceparent", f"00-{trace_id}-{span_id}-01".encode()), (b"x-other", b"ignored")]
    )
    span = trace.get_current_span(ctx).get_span_context()
    assert format(span.trace_id, "032x") == trace_id
    assert format(span.span_id, "016x") == span_id
    assert not trace.get_current_span(telemetry.extract_headers([])).get_span_context().is_valid


class _Started:
    def __init__(self) -> None:
        self.metrics: MetricsEndpoint | None = None
        self.stopped_with: float | None = None

    async def stop(self, grace: float = 5.0) -> None:
        self.stopped_with = grace


async def test_attach_metrics_endpoint_serves_or_stops_the_service() -> None:
    service = _Started()
    assert await attach_metrics_endpoint(service, "127.0.0.1:0", None) is service
    assert service.metrics is None

    attached = await attach_metrics_endpoint(service, "127.0.0.1:0", ServiceMetrics("unit"))
    assert attached.metrics is not None
    try:
        busy = f"127.0.0.1:{attached.metrics.port}"
        other = _Started()
        with pytest.raises(OSError, match="in use"):
            await attach_metrics_endpoint(other, busy, ServiceMetrics("unit"))
        assert (other.metrics, other.stopped_with) == (None, 0)
    finally:
        await attached.metrics.stop()
    assert service.stopped_with is None
