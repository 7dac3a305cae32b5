"""The OpenAPI description of POST/GET /graphql (one route, two methods: described by hand)."""

from __future__ import annotations

from typing import Any

OPENAPI_PATH: dict[str, Any] = {
    "post": {
        "tags": ["graphql"],
        "summary": "Execute a GraphQL query",
        "operationId": "graphql_post",
        "description": "Introspection describes the schema; every rate is a decimal String.",
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
        "responses": {"200": {"description": "GraphQL result (data and/or errors)"}},
    },
    "get": {
        "tags": ["graphql"],
        "summary": "Execute a GraphQL query (queries only)",
        "operationId": "graphql_get",
        "parameters": [
            {"name": "query", "in": "query", "required": True, "schema": {"type": "string"}},
            {"name": "variables", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "operationName", "in": "query", "required": False, "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "GraphQL result (data and/or errors)"},
            "405": {"description": "Mutations are served over POST only"},
        },
    },
}
