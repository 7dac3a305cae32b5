"""Query-string handling shared by the REST routes: strict parameter sets, symbol lists."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from kurs_common.errors import InvalidArgument


def only(*allowed: str) -> Callable[[Request], None]:
    """A dependency that rejects parameters the route does not know (typos must not pass silently)."""
    names = frozenset(allowed)

    def check(request: Request) -> None:
        for key in request.query_params:
            if key not in names:
                raise InvalidArgument(
                    key, f"unknown parameter; allowed: {', '.join(sorted(names)) or 'none'}"
                )
        for key in names - {"symbols"}:
            if len(request.query_params.getlist(key)) > 1:
                raise InvalidArgument(key, "given more than once")

    return check


def symbol_values(request: Request) -> list[str]:
    """`symbols` may be repeated and/or comma-separated."""
    return request.query_params.getlist("symbols")
