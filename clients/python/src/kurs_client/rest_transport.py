"""REST transport: the gateway's /rates/* and /currencies, and WS /ws/rates/stream for streams.

Same interface and failover as gRPC (health: GET /readyz). Per-rate provenance comes from
`expand=providers` (each figure's date and sources). ListPublishers has no REST route
(NotSupportedError). Problem details (RFC 9457) become typed errors naming the parameter;
503/504, 429 and connection failures move the call to the next gateway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from kurs_client import models
from kurs_client.config import ClientConfig, Endpoint
from kurs_client.errors import NotSupportedError
from kurs_client.pool import EndpointPool, StreamRenewal, TransientError
from kurs_client.transport import request_error

POLICY_VIOLATION = 1008


def _json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def _problem(response: httpx.Response) -> NoReturn:
    try:
        body = _json(response.content)
    except ValueError:
        body = {}
    params = body.get("invalid_params") or [] if isinstance(body, dict) else []
    if params:
        detail = f"{params[0].get('name', 'request')}: {params[0].get('reason', '')}"
    else:
        detail = f"request: {body.get('detail', response.reason_phrase) if isinstance(body, dict) else ''}"
    raise request_error(detail, not_found=response.status_code == 404)


def _rates(body: Mapping[str, Any]) -> dict[str, models.Rate]:
    providers: Mapping[str, Any] = body.get("providers") or {}
    shared_date = models.parse_date(str(body.get("date") or ""))
    shared_sources = tuple(body.get("sources") or ())
    out = {}
    for code, value in body["rates"].items():
        info = providers.get(code) or {}
        out[code] = models.Rate(
            currency=code,
            value=models.parse_decimal(value),
            date=models.parse_date(info["date"]) if "date" in info else shared_date,
            sources=tuple(info["sources"]) if "sources" in info else shared_sources,
            flag=str(info.get("flag", "")),
        )
    return out


class RestTransport:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.pool = EndpointPool(config, self._probe)
        self._headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(headers=self._headers, trust_env=False)
        return self._client

    async def _probe(self, endpoint: Endpoint, timeout: float) -> bool:
        try:
            response = await self.client.get(f"{endpoint.address}/readyz", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _get(self, path: str, params: Mapping[str, Any], timeout: float) -> Any:
        query = {k: v for k, v in params.items() if v not in (None, "", [], ())}

        async def attempt(endpoint: Endpoint, attempt_timeout: float) -> Any:
            try:
                response = await self.client.get(
                    f"{endpoint.address}{path}", params=query, timeout=attempt_timeout
                )
            except httpx.HTTPError as exc:
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code in (400, 404):
                _problem(response)
            if response.status_code != 200:
                raise TransientError(f"HTTP {response.status_code}")
            try:
                return _json(response.content)
            except ValueError as exc:
                raise TransientError("the gateway answered something that is not JSON") from exc

        return await self.pool.call(attempt, timeout)

    async def latest(self, base: str, symbols: Sequence[str], source: str, timeout: float) -> models.Rates:
        params = {"base": base, "symbols": ",".join(symbols), "source": source, "expand": "providers"}
        body = await self._get("/rates/latest", params, timeout)
        return models.Rates(
            base=body["base"],
            date=models.parse_date(str(body.get("date") or "")),
            rates=_rates(body),
            sequence=int(body["sequence"]) if "sequence" in body else None,
        )

    async def historical(
        self, date: dt.date, base: str, symbols: Sequence[str], source: str, timeout: float
    ) -> models.Rates:
        params = {
            "date": date.isoformat(),
            "base": base,
            "symbols": ",".join(symbols),
            "source": source,
            "expand": "providers",
        }
        body = await self._get("/rates/historical", params, timeout)
        return models.Rates(
            base=body["base"],
            date=models.parse_date(str(body.get("date") or "")),
            rates=_rates(body),
            requested_date=models.parse_date(str(body.get("requested_date") or "")),
        )

    async def timeseries(
        self, start: dt.date, end: dt.date, base: str, symbols: Sequence[str], source: str, timeout: float
    ) -> models.TimeSeries:
        params = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "base": base,
            "symbols": ",".join(symbols),
            "source": source,
        }
        body = await self._get("/rates/timeseries", params, timeout)
        return models.TimeSeries(
            base=body["base"],
            start_date=dt.date.fromisoformat(body["start_date"]),
            end_date=dt.date.fromisoformat(body["end_date"]),
            days={
                dt.date.fromisoformat(day): {c: models.parse_decimal(v) for c, v in rates.items()}
                for day, rates in body["rates"].items()
            },
            sources=tuple(body.get("sources") or ()),
        )

    async def convert(
        self, from_: str, to: str, amount: Decimal, date: dt.date | None, source: str, timeout: float
    ) -> models.Conversion:
        params = {"from": from_, "to": to, "amount": str(amount), "date": date.isoformat() if date else ""}
        params["source"] = source
        body = await self._get("/rates/convert", params, timeout)
        return models.Conversion(
            from_currency=body["from"],
            to_currency=body["to"],
            amount=models.parse_decimal(body["amount"]),
            rate=models.parse_decimal(body["rate"]),
            result=models.parse_decimal(body["result"]),
            date=models.parse_date(str(body.get("date") or "")),
            sources=tuple(body.get("sources") or ()),
        )

    async def currencies(self, timeout: float) -> models.Listing:
        body = await self._get("/currencies", {}, timeout)
        return models.Listing(
            currencies=tuple(
                models.Currency(
                    code,
                    info["name"],
                    models.parse_date(info.get("first_date") or ""),
                    models.parse_date(info.get("last_date") or ""),
                    bool(info.get("active", True)),
                )
                for code, info in body["currencies"].items()
            )
        )

    async def publishers(self, timeout: float) -> models.Listing:
        raise NotSupportedError("ListPublishers has no REST route; use the gRPC transport")

    async def stream(
        self, endpoint: Endpoint, base: str, symbols: Sequence[str], since: int, deadline: float
    ) -> AsyncIterator[models.StreamMessage]:
        query: dict[str, str] = {"base": base}
        if symbols:
            query["symbols"] = ",".join(symbols)
        if since:
            query["since"] = str(since)
        if self.config.api_key:
            query["api_key"] = self.config.api_key
        url = endpoint.address.replace("http", "ws", 1) + "/ws/rates/stream?" + urlencode(query)
        ends = asyncio.get_running_loop().time() + deadline
        try:
            async with connect(url, open_timeout=self.config.attempt_timeout) as ws:
                while True:
                    remaining = ends - asyncio.get_running_loop().time()
                    try:
                        frame = await asyncio.wait_for(ws.recv(), max(remaining, 0.0))
                    except TimeoutError:
                        raise StreamRenewal(f"stream deadline of {deadline}s reached") from None
                    message = _json(frame)
                    kind = message.get("type")
                    if kind == "error":
                        name = (message.get("invalid_params") or [{}])[0].get("name", "request")
                        raise request_error(f"{name}: {message.get('detail', '')}")
                    if kind not in ("snapshot", "update"):
                        continue  # heartbeat
                    date = models.parse_date(str(message.get("date") or ""))
                    yield models.StreamMessage(
                        sequence=int(message["sequence"]),
                        kind=kind,
                        base=message["base"],
                        date=date,
                        rates={
                            c: models.Rate(currency=c, value=models.parse_decimal(v), date=date, sources=())
                            for c, v in message["rates"].items()
                        },
                    )
        except (OSError, ConnectionClosed, InvalidStatus, WebSocketException) as exc:
            raise TransientError(f"stream broke: {exc!r}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
