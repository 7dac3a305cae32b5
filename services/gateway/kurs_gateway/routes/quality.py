"""The validator's view, over REST: quality records, anomalies and source freshness.

* `GET /quality?currency=USD[&date=2025-01-15][&kind=reference|live]` — the quality record of a
  published rate: contributors and their values, excluded contributors with reasons, spread,
  age of the newest input, confidence grade.
* `GET /anomalies?[currency][&source][&reason][&kind][&start_date][&end_date][&page_size][&page_token]`
  — rejected observations and flagged sources, newest first, paged (`next_page_token`).
* `GET /sources/freshness` — per source and kind: last observation, FRESH/STALE, counts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from starlette.responses import Response

from kurs.common.v1 import common_pb2
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common import validation
from kurs_common.errors import InvalidArgument
from kurs_gateway import deps, views
from kurs_gateway.anomalies import page_json
from kurs_gateway.params import only
from kurs_gateway.settings import GatewaySettings

router = APIRouter(tags=["quality"])

Validator = Annotated[validator_pb2_grpc.ValidatorServiceStub, Depends(deps.validator_stub)]
Settings = Annotated[GatewaySettings, Depends(deps.settings)]
KINDS = {
    "reference": common_pb2.OBSERVATION_KIND_REFERENCE,
    "live": common_pb2.OBSERVATION_KIND_LIVE,
}
DATE = r"^\d{4}-\d{2}-\d{2}$"


def _kind(value: str | None) -> common_pb2.ObservationKind.ValueType:
    if value is None:
        return common_pb2.OBSERVATION_KIND_UNSPECIFIED
    kind = KINDS.get(value.lower())
    if kind is None:
        raise InvalidArgument("kind", "must be 'reference' or 'live'")
    return kind


def _json(message: Message) -> Response:
    body: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return Response(views.dumps(body), media_type="application/json")


@router.get("/quality", dependencies=[Depends(only("currency", "date", "kind"))])
async def quality(
    stub: Validator,
    settings: Settings,
    currency: Annotated[str, Query(description="ISO 4217 code", pattern=r"^\s*[A-Za-z]{3,4}\s*$")],
    date: Annotated[str | None, Query(description="YYYY-MM-DD; newest when absent", pattern=DATE)] = None,
    kind: Annotated[str | None, Query(description="reference (default) or live")] = None,
) -> Response:
    """How a published rate was made: contributors, exclusions with reasons, spread, age, grade."""
    code = validation.currency("currency", currency)
    if date is not None:
        validation.date("date", date)
    reply = await stub.GetQuality(
        validator_pb2.GetQualityRequest(currency=code, date=date or "", kind=_kind(kind)),
        timeout=settings.upstream_timeout_seconds,
    )
    return _json(reply.record)


@router.get(
    "/anomalies",
    dependencies=[
        Depends(
            only("currency", "source", "reason", "kind", "start_date", "end_date", "page_size", "page_token")
        )
    ],
)
async def anomalies(
    request: Request,
    stub: Validator,
    settings: Settings,
    currency: Annotated[str | None, Query(pattern=r"^\s*[A-Za-z]{3,4}\s*$")] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    reason: Annotated[
        str | None, Query(max_length=64, description="e.g. inverted, decimal_shift, outlier")
    ] = None,
    kind: Annotated[str | None, Query(description="reference or live")] = None,
    start_date: Annotated[str | None, Query(pattern=DATE)] = None,
    end_date: Annotated[str | None, Query(pattern=DATE)] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Rejected observations and flagged sources, newest first."""
    for field, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None:
            validation.date(field, value, allow_future=True)
    if start_date and end_date and start_date > end_date:
        raise InvalidArgument("start_date", "start_date is after end_date")
    reply = await stub.ListAnomalies(
        validator_pb2.ListAnomaliesRequest(
            currency=validation.currency("currency", currency) if currency else "",
            source=source or "",
            reason=reason or "",
            kind=_kind(kind),
            start_date=start_date or "",
            end_date=end_date or "",
            page_size=page_size,
            page_token=page_token or "",
        ),
        timeout=settings.upstream_timeout_seconds,
    )
    return Response(views.dumps(page_json(reply)), media_type="application/json")


@router.get("/sources/freshness", dependencies=[Depends(only())])
async def freshness(stub: Validator, settings: Settings) -> Response:
    """Per source and kind: last observation, FRESH/STALE against its publication window, counts."""
    reply = await stub.ListSourceStates(
        validator_pb2.ListSourceStatesRequest(), timeout=settings.upstream_timeout_seconds
    )
    return _json(reply)
