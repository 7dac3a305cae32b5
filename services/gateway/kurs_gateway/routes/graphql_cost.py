"""GraphQL cost limits: what a query asks for, computed from its document before anything runs.

A query's **cost** is the number of rate figures its root fields ask for, summed over every root
field (each alias counts on its own, fragments included):

* a field with `startDate`/`endDate` (timeseries, fluctuation, volatility, trend, ohlc) costs
  days x currencies, days counted inclusive on the calendar (an upper bound of publication
  days; an unreadable range counts as the longest allowed, 366 days);
* `latest` and `historical` cost their currencies; `convert` and `currencies` cost 1;
* currencies are the `symbols` given, or every currency served when there are none.

Limits (refused with a 400 problem naming the limit, before execution): at most MAX_ROOT_FIELDS
root fields (aliases included), selections nested at most MAX_DEPTH deep, and at most MAX_COST
figures. What is admitted is charged to the calling key's rate limit by its cost: one token per
FIGURES_PER_TOKEN figures (rounded up; the request itself already took one), so a key cannot ask
for more figures per second than its rate allows by packing them into one query; when its bucket
cannot pay, the answer is 429 with Retry-After.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    value_from_ast_untyped,
)
from starlette.requests import Request
from starlette.responses import Response

from kurs_gateway import deps
from kurs_gateway.guard import PRINCIPAL
from kurs_gateway.problems import problem

MAX_ROOT_FIELDS = 20
MAX_DEPTH = 8
MAX_COST = 100_000  # about one year of every currency
FIGURES_PER_TOKEN = 1_000
LONGEST_RANGE_DAYS = 366


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: str  # "max_root_fields", "max_depth" or "max_cost"
    detail: str


@dataclass(frozen=True, slots=True)
class Cost:
    figures: int
    root_fields: int
    depth: int

    @property
    def tokens(self) -> int:
        """Rate-limit tokens this query costs in all (at least 1: the request itself)."""
        return max(1, math.ceil(self.figures / FIGURES_PER_TOKEN))

    def refusal(self) -> Refusal | None:
        if self.root_fields > MAX_ROOT_FIELDS:
            return Refusal(
                "max_root_fields",
                f"the query has {self.root_fields} root fields (aliases included); at most "
                f"{MAX_ROOT_FIELDS} are allowed",
            )
        if self.depth > MAX_DEPTH:
            return Refusal("max_depth", f"the query nests {self.depth} deep; at most {MAX_DEPTH}")
        if self.figures > MAX_COST:
            return Refusal(
                "max_cost",
                f"the query asks for {self.figures} rate figures (days x currencies over its "
                f"fields); at most {MAX_COST} per query: split it or narrow symbols and dates",
            )
        return None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        return next((o for o in operations if o.name is not None and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> list[FieldNode]:
    """The fields of a selection set, fragments expanded (each fragment once per path)."""
    out: list[FieldNode] = []
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            out.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            out += _fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                out += _fields(fragment.selection_set, fragments, seen | {name})
    return out


def _depth(field: FieldNode, fragments: dict[str, FragmentDefinitionNode], limit: int) -> int:
    children = _fields(field.selection_set, fragments)
    if not children or limit <= 0:
        return 1
    return 1 + max(_depth(child, fragments, limit - 1) for child in children)


def _arguments(field: FieldNode, variables: dict[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for argument in field.arguments or ():
        node: ValueNode = argument.value
        try:
            values[argument.name.value] = value_from_ast_untyped(node, variables)
        except (TypeError, ValueError):
            values[argument.name.value] = None
    return values


def _days(start: Any, end: Any) -> int:
    try:
        first = dt.date.fromisoformat(str(start).strip())
        last = dt.date.fromisoformat(str(end).strip())
    except ValueError:
        return LONGEST_RANGE_DAYS  # refused later by the field itself; counted at its most
    return min(LONGEST_RANGE_DAYS, max(1, (last - first).days + 1))


def _field_cost(name: str, arguments: dict[str, Any], all_currencies: int) -> int:
    if name in ("convert", "currencies", "__typename", "__schema", "__type"):
        return 1
    symbols = arguments.get("symbols")
    currencies = len(symbols) if isinstance(symbols, list) and symbols else all_currencies
    if "startDate" in arguments or "endDate" in arguments:
        return _days(arguments.get("startDate"), arguments.get("endDate")) * currencies
    return max(1, currencies)


def cost(
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    all_currencies: int,
) -> Cost:
    """The cost of the operation that would run (a validated document)."""
    operation = _operation(document, operation_name)
    if operation is None:
        return Cost(0, 0, 0)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    roots = _fields(operation.selection_set, fragments)
    figures = sum(_field_cost(f.name.value, _arguments(f, variables), all_currencies) for f in roots)
    depth = max((_depth(f, fragments, MAX_DEPTH + 1) for f in roots), default=0)
    return Cost(figures, len(roots), depth)


async def admit(
    request: Request, document: DocumentNode, operation_name: str | None, variables: dict[str, Any] | None
) -> Response | None:
    """None when the query may run (its cost charged to the caller's key); else the refusal."""
    snapshot = deps.snapshot(request)
    asked = cost(document, operation_name, variables, max(1, len(snapshot.entries) + 1))
    refusal = asked.refusal()
    if refusal is not None:
        return problem(
            400, refusal.detail, param="query", limit=refusal.limit, cost=asked.figures, max_cost=MAX_COST
        )
    principal = request.scope.get("state", {}).get(PRINCIPAL)
    if principal is None or asked.tokens <= 1:
        return None
    meter = deps.access(request).meter
    for _ in range(asked.tokens - 1):  # the request itself already took one token
        verdict = await meter.admit(principal.client, principal.limits, None)
        if not verdict.allowed:
            wait = max(1, math.ceil(verdict.retry_after))
            return problem(
                429,
                f"this query costs {asked.tokens} requests of the key's rate limit "
                f"({asked.figures} figures, one request per {FIGURES_PER_TOKEN}); retry later",
                headers={"Retry-After": str(wait)},
                limit="rate",
                cost=asked.figures,
            )
    return None
