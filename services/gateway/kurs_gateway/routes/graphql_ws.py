"""GraphQL over WebSocket at /graphql (the `graphql-transport-ws` protocol): live rates.

`subscription { rates(base: "USD", symbols: ["EUR"]) { kind sequence date rates { currency value } } }`
sends the current figures first (kind `snapshot`), then only the figures that changed (kind
`update`), with the same base/symbols validation as WS /ws/rates/stream; a client that falls
behind gets a fresh snapshot. Queries may be sent over the same connection (one `next`, then
`complete`).

Keys: as in the rest of the API (header or `api_key=` at the handshake), or in the
`connection_init` payload (`{"apiKey": "..."}` or `{"Authorization": "Bearer ..."}`), since
browsers cannot set headers on a WebSocket. A subscription needs the `stream` scope and a query
`read`; each operation spends one request of the key's limits. Close codes follow the protocol:
4400 bad message, 4401 subscribe before `connection_ack`, 4403 no valid key, 4406 wrong
subprotocol, 4408 no `connection_init` in time, 4409 duplicate operation id, 4429 second init.

Bounds (#17): a subscriber more than `KURS_GATEWAY_CLIENT_QUEUE` changes behind gets a fresh
snapshot (its queue never grows past that); a connection that cannot take one message within
`WRITE_TIMEOUT` seconds (its reader stopped reading and every buffer on the way is full) is
closed with 4008 "slow consumer", as /ws/rates/stream closes its slow consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import orjson
from fastapi import APIRouter, WebSocket
from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    subscribe,
    validate,
)
from starlette.websockets import WebSocketDisconnect

from kurs_common import validation
from kurs_common.errors import QueryError
from kurs_common.quotes import rebase_entries
from kurs_gateway import deps
from kurs_gateway.guard import PRINCIPAL
from kurs_gateway.keys.access import Access
from kurs_gateway.keys.registry import Principal
from kurs_gateway.routes.graphql import MAX_QUERY_BYTES, Root
from kurs_gateway.snapshot import PIVOT, LiveSnapshot

router = APIRouter()

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 10.0
MAX_OPERATIONS = 32
WRITE_TIMEOUT = 10.0
SLOW_CONSUMER = 4008


class SlowConsumer(Exception):
    """A write did not complete within WRITE_TIMEOUT."""


def _user_error(exc: QueryError) -> GraphQLError:
    return GraphQLError(
        f"{exc.field}: {exc.reason}", extensions={"code": "BAD_USER_INPUT", "field": exc.field}
    )


def _values(snapshot: LiveSnapshot, base: str, symbols: list[str] | None) -> dict[str, str]:
    if base != PIVOT and base not in snapshot.entries:
        return {}
    return {r.currency: r.value for r in rebase_entries(snapshot.entries, PIVOT, base, symbols)}


class SubscriptionRoot:
    """Subscription resolvers; graphql-core calls `root.rates(info, **arguments)`."""

    def __init__(self, snapshot: LiveSnapshot) -> None:
        self.snapshot = snapshot

    async def rates(self, info: Any, base: str, symbols: list[str] | None = None) -> AsyncIterator[Any]:
        snapshot = self.snapshot
        if not snapshot.ready or not snapshot.entries:
            raise GraphQLError(
                "rates are not available yet; retry shortly", extensions={"code": "UNAVAILABLE"}
            )
        served = {*snapshot.entries, PIVOT}
        try:
            code = validation.currency("base", base, served)
            wanted = validation.symbols("symbols", symbols or [], served)
        except QueryError as exc:
            raise _user_error(exc) from exc
        return self._updates(code, wanted)

    async def _updates(self, base: str, symbols: list[str] | None) -> AsyncIterator[Any]:
        snapshot = self.snapshot

        def event(kind: str, rates: dict[str, str]) -> dict[str, Any]:
            listed = [{"currency": c, "value": v} for c, v in rates.items()]
            update = {"kind": kind, "sequence": str(snapshot.sequence), "base": base, "rates": listed}
            return {"rates": {**update, "date": snapshot.day.isoformat() if snapshot.day else None}}

        with snapshot.listen() as listener:
            sent = _values(snapshot, base, symbols)
            yield event("snapshot", sent)
            while True:
                resync = (await listener.queue.get()).resync
                while not listener.queue.empty():
                    resync = listener.queue.get_nowait().resync or resync
                current = _values(snapshot, base, symbols)
                if listener.overflowed or resync or sent.keys() - current.keys():
                    listener.overflowed = False
                    yield event("snapshot", current)
                else:
                    fresh = {k: v for k, v in current.items() if sent.get(k) != v}
                    if fresh:
                        yield event("update", fresh)
                sent = current


def _key_from(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for name in ("apiKey", "api_key", "X-API-Key", "x-api-key"):
        if isinstance(payload.get(name), str):
            return str(payload[name])
    auth = payload.get("Authorization") or payload.get("authorization")
    if isinstance(auth, str) and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


class Connection:
    def __init__(self, ws: WebSocket, access: Access) -> None:
        self.ws = ws
        self.access = access
        found = ws.scope.get("state", {}).get(PRINCIPAL)
        self.principal: Principal | None = found if isinstance(found, Principal) else None
        self.acked = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()
        self.stalled = False  # a write timed out: nothing more is written but the close
        self.dropping = False

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.stalled:
                raise SlowConsumer
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await self.ws.send_text(orjson.dumps(message, default=str).decode())
            except TimeoutError:
                self.stalled = True
                raise SlowConsumer from None

    async def drop(self) -> None:
        """Close a connection whose reader does not keep up (4008), at most once."""
        if self.dropping:
            return
        self.dropping = True
        for task in list(self.operations.values()):
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(WRITE_TIMEOUT):
                await self.ws.close(SLOW_CONSUMER, f"slow consumer: no write within {WRITE_TIMEOUT:g} s")

    async def serve(self) -> None:
        try:
            frame = await asyncio.wait_for(self.ws.receive(), timeout=INIT_TIMEOUT)
        except TimeoutError:
            await self.ws.close(4408, "Connection initialisation timeout")
            return
        while frame["type"] != "websocket.disconnect":
            try:
                message = orjson.loads(frame.get("text") or b"")
                kind = message.get("type") if isinstance(message, dict) else None
            except orjson.JSONDecodeError:
                kind = None
            if not isinstance(kind, str):
                await self.ws.close(4400, "Invalid message")
                return
            if not await self.handle(kind, message):
                return
            frame = await self.ws.receive()

    async def handle(self, kind: str, message: dict[str, Any]) -> bool:
        if kind == "connection_init":
            if self.acked:
                await self.ws.close(4429, "Too many initialisation requests")
                return False
            if not await self._authenticate(message.get("payload")):
                return False
            self.acked = True
            await self.send({"type": "connection_ack"})
        elif kind == "ping":
            await self.send(
                {"type": "pong", **({"payload": message["payload"]} if "payload" in message else {})}
            )
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            if not self.acked:
                await self.ws.close(4401, "Unauthorized")
                return False
            ident, payload = message.get("id"), message.get("payload")
            if not isinstance(ident, str) or not ident or not isinstance(payload, dict):
                await self.ws.close(4400, "Invalid message")
                return False
            if ident in self.operations:
                await self.ws.close(4409, f"Subscriber for {ident[:64]} already exists")
                return False
            if len(self.operations) >= MAX_OPERATIONS:
                await self._errors(
                    ident, [{"message": f"at most {MAX_OPERATIONS} operations per connection"}]
                )
                return True
            task = asyncio.create_task(self.guarded(ident, payload))
            self.operations[ident] = task
            task.add_done_callback(lambda _, ident=ident: self._finished(ident))  # type: ignore[misc]
        elif kind == "complete":
            running = self.operations.pop(str(message.get("id")), None)
            if running is not None:
                running.cancel()
        else:
            await self.ws.close(4400, "Invalid message")
            return False
        return True

    async def _authenticate(self, payload: Any) -> bool:
        registry = self.access.registry
        if registry is None or self.principal is not None:
            return True
        key = _key_from(payload)
        found = await registry.verify(key) if key else None
        if found is None or not found.usable(time.time()):
            await self.ws.close(4403, "Forbidden")
            return False
        self.principal = found
        return True

    def _finished(self, ident: str) -> None:
        self.operations.pop(ident, None)

    async def _errors(self, ident: str, errors: Sequence[Mapping[str, Any]]) -> None:
        await self.send({"type": "error", "id": ident, "payload": errors})

    async def guarded(self, ident: str, payload: dict[str, Any]) -> None:
        try:
            await self.operation(ident, payload)
        except SlowConsumer:
            await self.drop()

    async def operation(self, ident: str, payload: dict[str, Any]) -> None:
        query, variables = payload.get("query"), payload.get("variables")
        name = payload.get("operationName")
        if not isinstance(query, str) or len(query.encode()) > MAX_QUERY_BYTES:
            await self._errors(ident, [{"message": f"a query string of at most {MAX_QUERY_BYTES} bytes"}])
            return
        if (variables is not None and not isinstance(variables, dict)) or (
            name is not None and not isinstance(name, str)
        ):
            await self._errors(ident, [{"message": "variables must be an object, operationName a string"}])
            return
        schema = deps.graphql_schema(self.ws)
        try:
            document = parse(query)
        except GraphQLError as exc:
            await self._errors(ident, [exc.formatted])
            return
        problems = validate(schema, document)
        if problems:
            await self._errors(ident, [e.formatted for e in problems])
            return
        live = any(
            isinstance(d, OperationDefinitionNode) and d.operation is OperationType.SUBSCRIPTION
            for d in document.definitions
        )
        if not await self._admit(ident, "stream" if live else "read"):
            return
        snapshot = deps.snapshot(self.ws)
        if not live:
            root = Root(
                snapshot,
                deps.rates_stub(self.ws),
                deps.settings(self.ws).upstream_timeout_seconds,
                scopes=None if self.principal is None else self.principal.scopes,
            )
            result = execute(
                schema, document, root_value=root, variable_values=variables, operation_name=name
            )
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            await self._next(ident, cast(ExecutionResult, result))
            await self.send({"type": "complete", "id": ident})
            return
        started = subscribe(
            schema,
            document,
            root_value=SubscriptionRoot(snapshot),
            variable_values=variables,
            operation_name=name,
        )
        stream = await started if inspect.isawaitable(started) else started
        if isinstance(stream, ExecutionResult):
            await self._errors(ident, [e.formatted for e in stream.errors or ()])
            return
        try:
            async for result in stream:
                await self._next(ident, result)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
        await self.send({"type": "complete", "id": ident})

    async def _next(self, ident: str, result: ExecutionResult) -> None:
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        await self.send({"type": "next", "id": ident, "payload": body})

    async def _admit(self, ident: str, klass: str) -> bool:
        principal = self.principal
        if principal is None:
            return True
        if klass not in principal.scopes:
            message = f"this API key lacks the {klass!r} scope"
            await self._errors(ident, [{"message": message, "extensions": {"code": "FORBIDDEN"}}])
            return False
        verdict = await self.access.meter.admit(principal.client, principal.limits, klass)
        if not verdict.allowed:
            extensions = {"code": "RATE_LIMITED", "reason": verdict.reason, "retryAfter": verdict.retry_after}
            await self._errors(ident, [{"message": "rate limit or quota exceeded", "extensions": extensions}])
            return False
        return True

    async def close(self) -> None:
        for task in list(self.operations.values()):
            task.cancel()
        for task in list(self.operations.values()):
            with contextlib.suppress(BaseException):
                await task


@router.websocket("/graphql")
async def graphql_ws(ws: WebSocket) -> None:
    if PROTOCOL not in ws.scope.get("subprotocols", []):
        await ws.accept()
        await ws.close(4406, "Subprotocol not acceptable")
        return
    await ws.accept(subprotocol=PROTOCOL)
    connection = Connection(ws, deps.access(ws))
    try:
        await connection.serve()
    except SlowConsumer:
        await connection.drop()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await connection.close()
