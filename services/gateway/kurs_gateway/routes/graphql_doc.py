"""The OpenAPI description of POST/GET /graphql (one route, two methods: described by hand)."""

from __future__ import annotations

from typing import Any

from kurs_gateway.routes.graphql_cost import FIGURES_PER_TOKEN, MAX_COST, MAX_DEPTH, MAX_ROOT_FIELDS

LIMITS = (
    f"Limits, checked before a query runs: at most {MAX_ROOT_FIELDS} root fields (aliases "
    f"included), nesting at most {MAX_DEPTH} deep, and a cost of at most {MAX_COST} rate figures "
    "(days x currencies summed over the root fields; symbols omitted = every currency). Over a "
    "limit: 400 problem with `limit` (max_root_fields, max_depth, max_cost) and `cost`. A query "
    f"is charged to its key's rate limit as one request per {FIGURES_PER_TOKEN} figures; when the "
    "key cannot pay: 429 with Retry-After."
)
REFUSALS = {
    "400": {"description": "Not GraphQL, or over a query limit (the problem's `limit` names it)"},
    "429": {"description": "The key's rate limit cannot pay for the query's cost"},
}

OPENAPI_PATH: dict[str, Any] = {
    "post": {
        "tags": ["graphql"],
        "summary": "Execute a GraphQL query",
        "operationId": "graphql_post",
        "description": "Introspection describes the schema; every rate is a decimal String. " + LIMITS,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["query"],
                        "properties": {
                            "query": {"type": "string"},
                            "variables": {"type": "object"},
                            "operationName": {"type": "string"},
                        },
                    }
                }
            },
        },
        "responses": {"200": {"description": "GraphQL result (data and/or errors)"}, **REFUSALS},
    },
    "get": {
        "tags": ["graphql"],
        "summary": "Execute a GraphQL query (queries only)",
        "operationId": "graphql_get",
        "description": LIMITS,
        "parameters": [
            {"name": "query", "in": "query", "required": True, "schema": {"type": "string"}},
            {"name": "variables", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "operationName", "in": "query", "required": False, "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "GraphQL result (data and/or errors)"},
            "405": {"description": "Mutations are served over POST only"},
            **REFUSALS,
        },
    },
}
