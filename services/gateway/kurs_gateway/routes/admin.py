"""The admin REST API for keys (a key with the `admin` scope; KURS_GATEWAY_AUTH=keys only).

POST   /admin/keys              create; the answer carries the key, shown this once
GET    /admin/keys              every key (never a key or its hash)
GET    /admin/keys/{id}         one key
DELETE /admin/keys/{id}         revoke (every gateway refuses it within the refresh interval)
GET    /admin/keys/{id}/usage   its usage, as GET /usage shows it to the key itself
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from kurs_gateway import deps
from kurs_gateway.keys import manage
from kurs_gateway.keys.access import Access
from kurs_gateway.keys.model import ID_PATTERN, SCOPES, KeyFieldError, KeyRecord
from kurs_gateway.params import only
from kurs_gateway.problems import problem
from kurs_gateway.routes.usage import caller, usage_body
from kurs_gateway.views import dumps

router = APIRouter(tags=["keys"], prefix="/admin")


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="what the key is for", examples=["pricing service"])
    scopes: list[str] = Field(description=f"any of {', '.join(SCOPES)}", examples=[["read", "stream"]])
    owner: str = ""
    quota_per_day: int | None = None
    quota_per_month: int | None = None
    rate_per_second: float | None = Field(default=None, description="default: the gateway's rate limit")
    burst: int | None = None
    expires_at: dt.datetime | None = Field(default=None, examples=["2027-01-01T00:00:00Z"])


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _access(request: Request) -> Access:
    access: Access = deps.access(request)
    if not access.managed:
        raise _Refused(problem(404, "key management is off on this gateway (KURS_GATEWAY_AUTH=keys)"))
    principal = caller(request)
    if principal is None or "admin" not in principal.scopes:
        # The guard already refused these; this route never trusts that alone.
        raise _Refused(problem(403, "a key with the 'admin' scope is required"))
    return access


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def _key_access(request: Request, key_id: str) -> Access:
    """The access for a route on one key: refused as `_access` refuses, then a malformed id (400)."""
    access = _access(request)
    if not ID_PATTERN.match(key_id):
        raise _Refused(problem(400, "a key id looks like kurs_0123456789ab", param="id"))
    return access


def _found(record: KeyRecord | None, key_id: str) -> KeyRecord:
    if record is None:
        raise _Refused(problem(404, f"no key {key_id}"))
    return record


@router.post("/keys", status_code=201, dependencies=[Depends(only())])
async def create_key(request: Request, body: KeyRequest) -> Response:
    """Create a key. `key` in the answer is the only time it is shown: store it now."""
    try:
        access = _access(request)
        spec = manage.checked(**body.model_dump())
    except _Refused as exc:
        return exc.response
    except KeyFieldError as exc:
        return problem(400, f"{exc.field}: {exc.reason}", param=exc.field)
    record, key = await access.create(spec)
    return _json({"key": key, **record.public()}, 201)


@router.get("/keys", dependencies=[Depends(only())])
async def list_keys(request: Request) -> Response:
    try:
        access = _access(request)
    except _Refused as exc:
        return exc.response
    return _json({"keys": [r.public() for r in await access.records()]})


@router.get("/keys/{key_id}", dependencies=[Depends(only())])
async def get_key(request: Request, key_id: str) -> Response:
    try:
        access = _key_access(request, key_id)
        record = _found(await access.record(key_id), key_id)
    except _Refused as exc:
        return exc.response
    return _json(record.public())


@router.delete("/keys/{key_id}", dependencies=[Depends(only())])
async def revoke_key(request: Request, key_id: str) -> Response:
    """Revoke a key (idempotent: revoking it again keeps the first revocation time)."""
    try:
        access = _key_access(request, key_id)
        record = _found(await access.revoke(key_id), key_id)
    except _Refused as exc:
        return exc.response
    return _json(record.public())


@router.get("/keys/{key_id}/usage", dependencies=[Depends(only())])
async def key_usage(request: Request, key_id: str) -> Response:
    try:
        access = _key_access(request, key_id)
        record = _found(await access.record(key_id), key_id)
    except _Refused as exc:
        return exc.response
    return _json(await usage_body(access.meter, access.principal_of(record)))
