"""Errors that name the offending request field; mapped to gRPC status and HTTP problem bodies."""

from __future__ import annotations


class QueryError(Exception):
    """A request that cannot be answered; `field` names the offending parameter."""

    status_code = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidArgument(QueryError):
    status_code = 400


class NotFound(QueryError):
    status_code = 404


class Unavailable(Exception):
    """A dependency (store, upstream service) cannot answer right now."""
