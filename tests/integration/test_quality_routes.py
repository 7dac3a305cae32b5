"""The validator's quality records and anomalies, served by the gateway over REST."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.observation import REFERENCE, Observation

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("quality"), recent_history_zip) as m:
        yield m


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as c:
        yield c


def published(history_csv: str, day: str, code: str) -> str:
    lines = history_csv.splitlines()
    header = lines[0].split(",")
    row = next(line for line in lines if line.startswith(day)).split(",")
    return row[header.index(code)]


async def test_quality_record_of_a_published_fixing(client: httpx.AsyncClient, history_csv: str) -> None:
    reply = await client.get("/quality", params={"currency": "USD", "date": "2025-01-18"})
    assert reply.status_code == 200, reply.text
    record = reply.json()
    assert record["date"] == "2025-01-17"
    assert record["value"] == published(history_csv, "2025-01-17", "USD")
    assert record["source"] == "ecb"
    assert [c["source"] for c in record["contributors"]] == ["ecb"]
    assert record["confidence"]


async def test_an_inverted_quote_is_listed_as_an_anomaly(mesh: Mesh, client: httpx.AsyncClient) -> None:
    day = dt.date(2026, 11, 2)
    at = dt.datetime(2026, 11, 2, 15, tzinfo=dt.UTC)
    corrupt = Observation("ecb", "test", REFERENCE, "EUR", "JPY", "0.005692", day.isoformat(), at)  # 1/175.68
    honest = Observation("ecb", "test", REFERENCE, "EUR", "USD", "1.1172", day.isoformat(), at)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.validator.port}") as channel:
        reply = await validator_pb2_grpc.ValidatorServiceStub(channel).SubmitObservations(
            validator_pb2.SubmitObservationsRequest(observations=[honest.to_proto(), corrupt.to_proto()])
        )
    assert [r.code for r in reply.rejections] == ["inverted"]
    listed = (await client.get("/anomalies", params={"currency": "JPY", "reason": "inverted"})).json()
    assert [(a["quote"], a["value"], a["reason"]) for a in listed["anomalies"]] == [
        ("JPY", "0.005692", "inverted")
    ]
    # The flat shape the gateway always answered, read from the validator's `observation`.
    (inverted,) = listed["anomalies"]
    assert list(inverted) == [
        "id", "reason", "detail", "source", "feed", "kind", "base", "quote", "value", "currency", "date",
        "observed_at", "expected", "detected_at",
    ]  # fmt: skip
    assert {k: inverted[k] for k in ("source", "feed", "kind", "base", "date", "observed_at")} == {
        "source": "ecb",
        "feed": "test",
        "kind": "OBSERVATION_KIND_REFERENCE",
        "base": "EUR",
        "date": "2026-11-02",
        "observed_at": "2026-11-02T15:00:00Z",
    }
    assert inverted["id"].isdigit()
    page = (await client.get("/anomalies", params={"page_size": 1})).json()
    assert len(page["anomalies"]) == 1
    freshness = (await client.get("/sources/freshness")).json()
    assert any(s["source"] == "ecb" for s in freshness["sources"])


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/quality", {}, "currency"),
        ("/quality", {"currency": "US"}, "currency"),
        ("/quality", {"currency": "USD", "kind": "weekly"}, "kind"),
        ("/quality", {"currency": "USD", "date": "2025-02-30"}, "date"),
        ("/anomalies", {"page_size": "0"}, "page_size"),
        ("/anomalies", {"start_date": "2025-02-01", "end_date": "2025-01-01"}, "start_date"),
        ("/anomalies", {"colour": "red"}, "colour"),
    ],
)
async def test_bad_parameters(
    client: httpx.AsyncClient, path: str, params: dict[str, str], param: str
) -> None:
    reply = await client.get(path, params=params)
    assert reply.status_code == 400, reply.text
    assert reply.json()["invalid_params"][0]["name"] == param


async def test_quality_not_found(client: httpx.AsyncClient) -> None:
    reply = await client.get("/quality", params={"currency": "USD", "date": "2001-01-01"})
    assert reply.status_code == 404
