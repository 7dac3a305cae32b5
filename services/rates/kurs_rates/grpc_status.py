"""How the rates servicers answer a failed call: our errors mapped onto gRPC status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc

from kurs_common.errors import InvalidArgument, NotFound, QueryError, Unavailable

T = TypeVar("T")


async def abort_for(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    if isinstance(exc, InvalidArgument):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{exc.field}: {exc.reason}")
    if isinstance(exc, NotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, f"{exc.field}: {exc.reason}")
    if isinstance(exc, Unavailable):
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")
    if isinstance(exc, TimeoutError):
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "store did not answer in time")
    raise exc


async def guarded(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (QueryError, Unavailable, TimeoutError) as exc:
        await abort_for(context, exc)
