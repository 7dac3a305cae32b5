"""routes/graphql_cost: what a GraphQL query asks for, from its document alone."""

from __future__ import annotations

from typing import Any

from graphql import parse

from kurs_gateway.routes.graphql_cost import MAX_COST, Cost, cost

ALL = 30  # currencies served


def of(query: str, variables: dict[str, Any] | None = None, operation: str | None = None) -> Cost:
    return cost(parse(query), operation, variables, ALL)


def test_each_field_costs_the_figures_it_asks_for() -> None:
    assert of('{ latest(symbols: ["USD", "GBP"]) { base } }').figures == 2
    assert of("{ latest { base } }").figures == ALL
    assert of('{ historical(date: "2025-01-17") { base } }').figures == ALL
    assert of('{ convert(from: "EUR", to: "USD", amount: "1") { rate } currencies { code } }').figures == 2
    series = '{ timeseries(startDate: "2025-01-01", endDate: "2025-01-31", symbols: ["USD"]) { base } }'
    assert of(series).figures == 31
    year = '{ timeseries(startDate: "2024-01-01", endDate: "2024-12-31") { base } }'
    assert of(year).figures == 366 * ALL


def test_aliases_fragments_and_variables_are_counted() -> None:
    query = """query Q($s: String!) { a: latest { base } ...F ... on Query { c: latest { base } } }
               fragment F on Query { b: timeseries(startDate: $s, endDate: "2025-01-10") { base } }"""
    asked = of(query, {"s": "2025-01-01"})
    assert (asked.root_fields, asked.figures) == (3, ALL + 10 * ALL + ALL)
    # An unreadable range counts as the longest allowed.
    assert of('{ timeseries(startDate: "x", endDate: "y") { base } }').figures == 366 * ALL


def test_limits_and_tokens() -> None:
    many = "{ " + " ".join(f"a{i}: latest {{ base }}" for i in range(21)) + " }"
    refusal = of(many).refusal()
    assert refusal is not None
    assert refusal.limit == "max_root_fields"
    deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"
    refusal = of(deep).refusal()
    assert refusal is not None
    assert refusal.limit == "max_depth"
    assert Cost(MAX_COST + 1, 1, 2).refusal() is not None
    assert Cost(MAX_COST, 1, 2).refusal() is None
    assert (Cost(1, 1, 1).tokens, Cost(1_000, 1, 1).tokens, Cost(1_001, 1, 1).tokens) == (1, 1, 2)


def test_the_named_operation_is_the_one_costed() -> None:
    query = 'query A { latest { base } } query B { latest(symbols: ["USD"]) { base } }'
    assert of(query, operation="B").figures == 1
    assert of(query, operation="A").figures == ALL
    assert of(query).figures == 0  # ambiguous without a name: graphql-core refuses it anyway
