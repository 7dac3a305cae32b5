"""POST /rates/convert/bulk: up to MAX_ITEMS conversions in one request, streamed as NDJSON.

Request: a JSON array of `{"amount": "100", "from": "USD", "to": "EUR", "date": "2025-01-15"}`
(`date` optional: latest when absent). Amounts should be strings; a JSON number is taken from
its exact text, never through a binary float. Answer: `application/x-ndjson`, one line per
item in input order, `{"index": i, "status": 200, ...the /rates/convert fields...}` or
`{"index": i, "status": 4xx|5xx, "problem": {RFC 9457 problem naming the field}}`. One bad item
never fails the batch; only a body that is not a JSON array (or is too large) is a 400/413.

Latest conversions use one copy of the live snapshot taken when the request starts (the whole
batch sees one set of rates); dated ones ask the rates service once per distinct date
(GetHistoricalRates, base EUR, all currencies), at most FETCH_CONCURRENCY at a time. Figures are
computed exactly like /rates/convert: the cross rate rounded to 10 significant digits, the
result to 6 decimal places, half-even (kurs_common.money).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import grpc
import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from kurs.rates.v1 import rates_pb2, rates_pb2_grpc
from kurs_common import money, validation
from kurs_common.errors import InvalidArgument, QueryError
from kurs_common.quotes import rebase_entries
from kurs_common.rate import Rate, RateKind
from kurs_common.timeutil import from_timestamp
from kurs_gateway import deps, problems
from kurs_gateway.params import only
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

router = APIRouter(tags=["rates"])

MAX_ITEMS = 10_000
MAX_BODY_BYTES = 8 * 1024 * 1024
FETCH_CONCURRENCY = 8
CHUNK = 500  # items per streamed write
FIELDS = frozenset({"amount", "from", "to", "date"})
NDJSON = "application/x-ndjson"

Snapshot = Annotated[LiveSnapshot, Depends(deps.snapshot)]
Stub = Annotated[rates_pb2_grpc.RatesServiceStub, Depends(deps.rates_stub)]
Settings = Annotated[GatewaySettings, Depends(deps.settings)]

Rates = Mapping[str, Rate]


class ItemProblem(Exception):
    """One item's failure: an HTTP status, the field it names and why."""

    def __init__(self, status: int, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.status, self.field, self.detail = status, field, detail


def problem_line(index: int, status: int, field: str | None, detail: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problems._TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["invalid_params"] = [{"name": field, "reason": detail}]
    return {"index": index, "status": status, "problem": body}


def parse_items(raw: bytes) -> list[Any]:
    """The request body as a list; numbers keep their exact text. Raises InvalidArgument."""

    def refuse(text: str) -> None:
        raise ValueError(f"{text} is not a number")

    try:
        items = json.loads(raw, parse_float=str, parse_int=str, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument("body", f"not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise InvalidArgument("body", "must be a JSON array of {amount, from, to, date?} objects")
    if not items:
        raise InvalidArgument("body", "holds no item")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument("body", f"at most {MAX_ITEMS} items per request; got {len(items)}")
    return items


def check_item(
    item: Any, valid: dict[tuple[str, str], str] | None = None
) -> tuple[str, str, str, str | None]:
    """(amount text, from, to, date or None) of one item, structurally valid. Raises ItemProblem.

    `valid` remembers the codes and dates already checked in this request ((field, text) ->
    value): a batch repeats them far more often than it has distinct ones."""
    known = {} if valid is None else valid
    if not isinstance(item, dict):
        raise ItemProblem(400, "item", "must be an object {amount, from, to, date?}")
    for key in item:
        if key not in FIELDS:
            raise ItemProblem(400, str(key), "unknown field; allowed: amount, date, from, to")
    for key in ("amount", "from", "to"):
        if key not in item:
            raise ItemProblem(400, key, "is required")
    for key, value in item.items():
        if not isinstance(value, str):
            raise ItemProblem(400, key, "must be a string")
    try:
        src = known.get(("from", item["from"])) or validation.currency("from", item["from"])
        known[("from", item["from"])] = src
        dst = known.get(("to", item["to"])) or validation.currency("to", item["to"])
        known[("to", item["to"])] = dst
        amount = money.parse_amount(item["amount"])
        date = item.get("date")
        if date is not None and ("date", date) not in known:
            validation.date("date", date)
            known[("date", date)] = date
    except money.DecimalFormatError as exc:
        raise ItemProblem(400, "amount", str(exc)) from exc
    except QueryError as exc:
        raise ItemProblem(exc.status_code, exc.field, exc.reason) from exc
    return money.format_decimal(amount), src, dst, date


def pair_rate(src: str, dst: str, rates: Rates) -> tuple[str, str, list[str]]:
    """(rate, date, sources) of one pair against pivot-quoted rates, as /rates/convert gives them."""
    for field, code in (("from", src), ("to", dst)):
        if code != PIVOT and code not in rates:
            raise ItemProblem(400, field, f"currency {code} is not served (see /currencies)")
    rate = rebase_entries(rates, PIVOT, src, [dst])[0]
    return rate.value, rate.day.isoformat(), list(rate.sources)


class PairRates:
    """Each (rate set, from, to) pair's rate computed once per request: a batch repeats pairs
    (and a date's rate set) far more often than it has distinct ones."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, str, str], tuple[str, str, list[str]] | ItemProblem] = {}

    def get(self, src: str, dst: str, rates: Rates) -> tuple[str, str, list[str]]:
        key = (id(rates), src, dst)  # the rate sets live as long as the request
        found = self._known.get(key)
        if found is None:
            try:
                found = pair_rate(src, dst, rates)
            except ItemProblem as exc:
                found = exc
            self._known[key] = found
        if isinstance(found, ItemProblem):
            raise ItemProblem(found.status, found.field, found.detail)
        return found


def convert_one(
    amount: str, src: str, dst: str, rates: Rates, pairs: PairRates | None = None
) -> dict[str, Any]:
    """One conversion against pivot-quoted rates, as /rates/convert answers it."""
    rate, day, sources = (pairs or PairRates()).get(src, dst, rates)
    return {
        "from": src,
        "to": dst,
        "amount": amount,
        "rate": rate,
        "result": money.convert(money.parse_decimal(amount), rate),
        "date": day,
        "sources": sources,
    }


def _entries(reply: rates_pb2.GetHistoricalRatesResponse) -> dict[str, Rate]:
    return {
        r.currency: Rate(
            "",
            RateKind.REFERENCE,
            r.currency,
            r.value,
            dt.date.fromisoformat(r.date),
            from_timestamp(r.observed_at),
            tuple(r.sources),
            r.replay,
        )
        for r in reply.rates
        if r.currency != PIVOT
    }


class DatedRates:
    """Rates of each distinct date, fetched once, FETCH_CONCURRENCY at a time."""

    def __init__(self, stub: rates_pb2_grpc.RatesServiceStub, deadline: float) -> None:
        self.stub = stub
        self.deadline = deadline
        self.gate = asyncio.Semaphore(FETCH_CONCURRENCY)
        self.tasks: dict[str, asyncio.Task[Rates | ItemProblem]] = {}

    def want(self, date: str) -> None:
        if date not in self.tasks:
            self.tasks[date] = asyncio.create_task(self._fetch(date))

    async def get(self, date: str) -> Rates:
        self.want(date)
        result = await self.tasks[date]
        if isinstance(result, ItemProblem):
            raise result
        return result

    async def _fetch(self, date: str) -> Rates | ItemProblem:
        request = rates_pb2.GetHistoricalRatesRequest(date=date, base=PIVOT)
        async with self.gate:
            try:
                reply = await self.stub.GetHistoricalRates(request, timeout=self.deadline)
            except grpc.aio.AioRpcError as exc:
                status = {
                    grpc.StatusCode.INVALID_ARGUMENT: 400,
                    grpc.StatusCode.NOT_FOUND: 404,
                    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
                }.get(exc.code(), 503)
                details = exc.details() or exc.code().name
                return ItemProblem(status, "date", details.partition(": ")[2] or details)
        return _entries(reply)

    def cancel(self) -> None:
        for task in self.tasks.values():
            task.cancel()


async def results(items: list[Any], latest: Rates | None, dated: DatedRates) -> AsyncIterator[bytes]:
    """NDJSON lines in input order, CHUNK items per write."""
    checked: list[tuple[str, str, str, str | None] | ItemProblem] = []
    valid: dict[tuple[str, str], str] = {}
    for item in items:
        try:
            checked.append(check_item(item, valid))
        except ItemProblem as exc:
            checked.append(exc)
    for entry in checked:  # start every distinct date's fetch now; lines are written in order
        if not isinstance(entry, ItemProblem) and entry[3] is not None:
            dated.want(entry[3])
    pairs = PairRates()
    try:
        lines: list[bytes] = []
        for index, entry in enumerate(checked):
            try:
                if isinstance(entry, ItemProblem):
                    raise entry
                amount, src, dst, date = entry
                if date is not None:
                    rates = await dated.get(date)
                elif latest:
                    rates = latest
                else:
                    raise ItemProblem(503, None, "no rates have been published yet")
                line = {"index": index, "status": 200, **convert_one(amount, src, dst, rates, pairs)}
            except ItemProblem as exc:
                line = problem_line(index, exc.status, exc.field, exc.detail)
            lines.append(orjson.dumps(line))
            if len(lines) >= CHUNK:
                yield b"\n".join(lines) + b"\n"
                lines = []
        if lines:
            yield b"\n".join(lines) + b"\n"
    finally:
        dated.cancel()


BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_ITEMS,
                    # items are checked one by one (a bad one gets its own problem line), so the
                    # schema does not constrain them: {"amount": "100", "from": "USD", "to": "EUR",
                    # "date": "2025-01-15"}
                    "items": {},
                }
            }
        },
    }
}


@router.post(
    "/rates/convert/bulk",
    dependencies=[Depends(only())],
    openapi_extra=BODY,
    responses={
        200: {"content": {NDJSON: {}}, "description": "one JSON line per item, in input order"},
        413: {"description": f"body over {MAX_BODY_BYTES} bytes"},
    },
)
async def convert_bulk(request: Request, snapshot: Snapshot, stub: Stub, settings: Settings) -> Response:
    """Up to 10,000 `{amount, from, to, date?}` conversions; NDJSON lines in input order, each
    one ok (status 200 and the /rates/convert fields) or its own problem."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return problems.problem(413, f"the body may hold at most {MAX_BODY_BYTES} bytes", param="body")
    items = parse_items(bytes(raw))
    latest = dict(snapshot.entries) if snapshot.entries else None  # one consistent set for the batch
    dated = DatedRates(stub, settings.upstream_timeout_seconds)
    return StreamingResponse(results(items, latest, dated), media_type=NDJSON)
