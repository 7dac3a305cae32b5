"""Traces over OTLP: the four services started by `make run`'s entrypoint (kurs_common.mesh) with
KURS_<SERVICE>_OTEL_EXPORTER=otlp export to a local OTLP/gRPC receiver served by this test
(opentelemetry-proto's TraceService). Trace context crosses HTTP -> gateway -> gRPC hops, the
validator -> rates hop, and the WebSocket handshake; attributes use semantic-convention names."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from websockets.asyncio.client import connect

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SERVICES = ("rates", "validator", "collector", "gateway")


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]


@dataclass
class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    spans: list[Span] = field(default_factory=list)

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    attributes = {a.key: _value(a.value) for a in s.attributes}
                    self.spans.append(
                        Span(
                            resource.get("service.name", ""),
                            s.name,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            s.kind,
                            attributes,
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def find(self, **where: Any) -> list[Span]:
        return [s for s in self.spans if all(getattr(s, k) == v for k, v in where.items())]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TracedMesh:
    url: str
    receiver: Receiver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, recent_history_zip: Path
) -> AsyncIterator[TracedMesh]:
    receiver = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    otlp_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ports = {name: free_port() for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KURS_", "OTEL_"))}
    for name in SERVICES:
        env[f"KURS_{name.upper()}_OTEL_EXPORTER"] = "otlp"
        env[f"KURS_{name.upper()}_OTEL_ENDPOINT"] = f"127.0.0.1:{otlp_port}"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # export every 0.1 s instead of 5 s
    env["KURS_COLLECTOR_ECB_HISTORY_PATH"] = str(recent_history_zip)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kurs_common.mesh",
        "--data-dir",
        str(tmp_path_factory.mktemp("otlp")),
        *(arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))),
        "--stream-port",
        "0",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    log: list[str] = []
    try:
        assert proc.stderr is not None
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 120)).decode(errors="replace")
            assert line, "mesh exited:\n" + "\n".join(log[-40:])
            log.append(line.rstrip())
            if line.startswith("kurs: serving"):
                break
        drain = asyncio.create_task(proc.stderr.read())
        yield TracedMesh(f"http://127.0.0.1:{ports['gateway']}", receiver)
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await server.stop(0)


async def wait_for(receiver: Receiver, **where: Any) -> list[Span]:
    for _ in range(150):
        if found := receiver.find(**where):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no span {where}; got {sorted({(s.service, s.name) for s in receiver.spans})}")


async def server_span(receiver: Receiver, trace_id: str) -> tuple[Span, set[str]]:
    """The gateway's one SERVER span of a trace, and the ids of all its spans in that trace."""
    spans = await wait_for(
        receiver, service="kurs-gateway", trace_id=trace_id, kind=trace_pb2.Span.SPAN_KIND_SERVER
    )
    assert len(spans) == 1, spans
    return spans[0], {s.span_id for s in receiver.find(service="kurs-gateway", trace_id=trace_id)}


async def test_an_http_request_is_one_trace_through_the_gateway_and_the_grpc_hop(mesh: TracedMesh) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with httpx.AsyncClient(base_url=mesh.url) as client:
        reply = await client.get("/sources", headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert reply.status_code == 200

    gateway, gateway_ids = await server_span(mesh.receiver, trace_id)
    assert gateway.name == "GET /sources"
    assert gateway.parent_id == parent
    assert gateway.attributes["http.request.method"] == "GET"
    assert gateway.attributes["http.route"] == "/sources"
    assert gateway.attributes["http.response.status_code"] == 200

    (collector,) = await wait_for(mesh.receiver, service="kurs-collector", trace_id=trace_id)
    assert collector.name == "/kurs.collector.v1.CollectorService/ListSources"
    assert collector.parent_id in gateway_ids
    assert collector.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert collector.attributes["rpc.system"] == "grpc"
    assert collector.attributes["rpc.service"] == "kurs.collector.v1.CollectorService"
    assert collector.attributes["rpc.method"] == "ListSources"
    assert collector.attributes["rpc.grpc.status_code"] == 0


async def test_the_history_route_reaches_rates_in_the_same_trace(mesh: TracedMesh) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    async with httpx.AsyncClient(base_url=mesh.url) as client:
        reply = await client.get(
            "/rates/historical",
            params={"date": "2025-01-15"},
            headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        )
    assert reply.status_code == 200
    gateway, gateway_ids = await server_span(mesh.receiver, trace_id)
    assert gateway.parent_id == parent
    rates = await wait_for(
        mesh.receiver,
        service="kurs-rates",
        trace_id=trace_id,
        name="/kurs.rates.v1.RatesService/GetHistoricalRates",
    )
    assert all(r.parent_id in gateway_ids for r in rates)


async def test_a_fast_path_answer_is_traced_too(mesh: TracedMesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.url) as client:
        params = {"symbols": "CHF", "base": "EUR"}
        assert (await client.get("/rates/latest", params=params)).status_code == 200  # builds the body
        trace_id, parent = "6e0c63257de34c92bf9efcd03927272e", "1f3a5b7c9d0e2f41"
        reply = await client.get(
            "/rates/latest", params=params, headers={"traceparent": f"00-{trace_id}-{parent}-01"}
        )
    assert reply.status_code == 200
    span, _ = await server_span(mesh.receiver, trace_id)
    assert span.name == "GET /rates/latest"
    assert span.parent_id == parent
    assert span.attributes["kurs.fast_path"] is True
    assert span.attributes["http.route"] == "/rates/latest"


async def test_validator_to_rates_delivery_is_traced(mesh: TracedMesh) -> None:
    submits = await wait_for(
        mesh.receiver, service="kurs-validator", name="/kurs.validator.v1.ValidatorService/SubmitObservations"
    )
    ingests = await wait_for(
        mesh.receiver, service="kurs-rates", name="/kurs.rates.v1.RatesIngestService/IngestRates"
    )
    by_id = {s.span_id: s for s in submits}
    linked = [i for i in ingests if i.parent_id in by_id and by_id[i.parent_id].trace_id == i.trace_id]
    assert linked, "IngestRates spans should continue the validator's SubmitObservations traces"


async def test_the_websocket_connection_continues_the_callers_trace(mesh: TracedMesh) -> None:
    trace_id, parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    url = mesh.url.replace("http", "ws") + "/ws/rates/stream?symbols=USD"
    async with connect(url, additional_headers={"traceparent": f"00-{trace_id}-{parent}-01"}) as ws:
        assert '"snapshot"' in str(await ws.recv())
    span, _ = await server_span(mesh.receiver, trace_id)
    assert span.name == "WS /ws/rates/stream"
    assert span.parent_id == parent
    assert span.attributes["network.protocol.name"] == "websocket"
    assert span.attributes["http.route"] == "/ws/rates/stream"
