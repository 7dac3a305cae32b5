"""Server interceptors' one way to wrap a method: the same (de)serializers, a new behaviour
(with_unary_unary, with_unary_stream), from a MethodWrappingInterceptor's `wrap`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc


def with_unary_unary(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]) -> grpc.RpcMethodHandler:
    """`handler`'s unary-unary method replaced by `behaviour` (which usually calls the original)."""
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def with_unary_stream(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]) -> grpc.RpcMethodHandler:
    """`handler`'s unary-stream method replaced by `behaviour` (an async generator)."""
    return grpc.unary_stream_rpc_method_handler(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def method_name(details: Any) -> str:
    """The full method name of a call's details, server or client side ("/package.Service/Method")."""
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


class MethodWrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server interceptor that wraps every known method's handler (`wrap`); unknown ones pass."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrap(handler, handler_call_details)

    def wrap(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        raise NotImplementedError
