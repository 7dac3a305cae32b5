"""The servicer with stand-ins for the rates service and the gRPC context (no network)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, NoReturn

import grpc
import pytest
from unit.validator.helpers import NOW, business_days, engine, fixing

from kurs.common.v1 import common_pb2
from kurs.rates.v1 import ingest_pb2
from kurs.validator.v1 import validator_pb2
from kurs_common.observation import REFERENCE, Observation
from kurs_validator.engine import ValidationEngine
from kurs_validator.hub import AnomalyHub
from kurs_validator.servicer import ValidatorServicer
from kurs_validator.store import AnomalyFilter, ValidatorStore
from kurs_validator.wire import observations_from_proto


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


class Context:
    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise Aborted(code, details)


class Rates:
    def __init__(self) -> None:
        self.down = False
        self.received: list[ingest_pb2.AcceptedRate] = []

    async def IngestRates(
        self, request: ingest_pb2.IngestRatesRequest, **_: Any
    ) -> ingest_pb2.IngestRatesResponse:
        if self.down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
            )
        self.received.extend(request.rates)
        return ingest_pb2.IngestRatesResponse(inserted=len(request.rates))


def _servicer(tmp_path: Path, rates: Rates) -> tuple[ValidatorServicer, ValidatorStore]:
    store = ValidatorStore(f"sqlite:///{tmp_path / 'v.sqlite3'}")
    store.open()
    servicer = ValidatorServicer(rates, engine(), store, AnomalyHub(), 2, 5.0, clock=lambda: NOW)  # type: ignore[arg-type]
    return servicer, store


def _request(*values: str) -> validator_pb2.SubmitObservationsRequest:
    days = business_days(len(values))
    return validator_pb2.SubmitObservationsRequest(
        observations=[fixing("ecb", "USD", v, d).to_proto() for v, d in zip(values, days, strict=True)]
    )


async def test_rates_down_keeps_the_published_rates_for_the_retry(tmp_path: Path) -> None:
    rates = Rates()
    servicer, store = _servicer(tmp_path, rates)
    rates.down = True
    request = _request("1.10", "1.11", "1.12")
    with pytest.raises(Aborted) as caught:
        await servicer.SubmitObservations(request, Context())
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    rates.down = False
    reply = await servicer.SubmitObservations(request, Context())
    # The kept blend rows, the kept figures as published, and the figures of the repeated batch
    # again (idempotent downstream: the real store counts those unchanged; this stub counts rows).
    assert (reply.accepted, reply.duplicates, reply.published, reply.inserted) == (3, 3, 0, 9)
    blend = [r for r in rates.received if r.source == "blend"]
    figures = [r for r in rates.received if r.source == "ecb"]
    assert [r.value for r in blend] == ["1.10", "1.11", "1.12"]
    assert all(r.base == "EUR" and list(r.sources) == ["ecb"] for r in blend)
    assert [r.value for r in figures] == ["1.10", "1.11", "1.12"] * 2
    assert store.get_quality("reference", "USD", None) is not None
    store.close()


async def test_rejections_are_stored_and_reported(tmp_path: Path) -> None:
    rates = Rates()
    servicer, store = _servicer(tmp_path, rates)
    reply = await servicer.SubmitObservations(_request("1.10", "0", "NaN"), Context())
    assert [(r.index, r.field, r.code) for r in reply.rejections] == [
        (1, "value", "non_positive"),
        (2, "value", "not_a_number"),
    ]
    assert all(r.reason for r in reply.rejections)  # in words, for a log
    # The previous contract's shape is still filled for collectors of the previous release.
    assert [(r.index, r.reason) for r in reply.legacy_rejections] == [
        (1, "non_positive"),
        (2, "not_a_number"),
    ]
    assert [a.reason for a in store.list_anomalies(AnomalyFilter(), 10, None)] == [
        "not_a_number",
        "non_positive",
    ]
    too_many = validator_pb2.SubmitObservationsRequest(observations=[common_pb2.Observation()] * 50_001)
    with pytest.raises(Aborted) as caught:
        await servicer.SubmitObservations(too_many, Context())
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    store.close()


def test_observations_from_proto_matches_the_shared_mapping() -> None:
    obs = fixing("ecb", "USD", "1.1172", business_days(1)[0])
    (back,) = observations_from_proto([obs.to_proto()])
    assert back == type(obs).from_proto(obs.to_proto()) == obs


class _RefusingRates:
    """A rates stub that refuses every JPY rate by its typed per-item rejection, like the real service."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def IngestRates(
        self, request: ingest_pb2.IngestRatesRequest, **_: object
    ) -> ingest_pb2.IngestRatesResponse:
        refused = [
            common_pb2.ItemRejection(index=i, field="value", reason="refused")
            for i, rate in enumerate(request.rates)
            if rate.currency == "JPY"
        ]
        taken = [r.currency for r in request.rates if r.currency != "JPY"]
        self.stored += taken
        return ingest_pb2.IngestRatesResponse(inserted=len(taken), rejections=refused)


class _Context:
    async def abort(self, code: object, details: str) -> None:
        raise RuntimeError(details)


async def test_one_refused_rate_does_not_drop_the_others(tmp_path: object) -> None:
    store = ValidatorStore(f"sqlite:///{tmp_path}/v.sqlite3")
    store.open()
    rates = _RefusingRates()
    servicer = ValidatorServicer(rates, ValidationEngine(), store, AnomalyHub(), forward_batch=10, timeout=5)  # type: ignore[arg-type]
    at = dt.datetime(2025, 1, 15, 15, tzinfo=dt.UTC)
    batch = [
        Observation("ecb", "t", REFERENCE, "EUR", code, value, "2025-01-15", at)
        for code, value in (("USD", "1.0316"), ("JPY", "162.5"), ("GBP", "0.8424"))
    ]
    request = validator_pb2.SubmitObservationsRequest(observations=[o.to_proto() for o in batch])
    await servicer.SubmitObservations(request, _Context())
    store.close()
    # Each figure travels twice (as the ECB published it, and in the blend); both JPY refused.
    assert sorted(rates.stored) == ["GBP", "GBP", "USD", "USD"]


async def test_a_full_outbox_refuses_new_batches_instead_of_dropping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kurs_validator.servicer as servicer_module

    monkeypatch.setattr(servicer_module, "MAX_OUTBOX", 4)
    rates = Rates()
    servicer, store = _servicer(tmp_path, rates)
    rates.down = True
    with pytest.raises(Aborted):
        await servicer.SubmitObservations(_request("1.10", "1.11", "1.12"), Context())
    kept = list(servicer._outbox)
    assert len(kept) >= 4
    with pytest.raises(Aborted) as caught:
        await servicer.SubmitObservations(_request("1.20"), Context())
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert servicer._outbox == kept  # nothing dropped, the new batch not taken
    store.close()
