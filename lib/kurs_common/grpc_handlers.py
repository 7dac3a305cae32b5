"""Server interceptors' one way to wrap a method: the same (de)serializers, a new behaviour."""

from __future__ import annotations

from collections.abc import Callable
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
