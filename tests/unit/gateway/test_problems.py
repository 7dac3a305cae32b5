"""Problem details: a 405 names every method served at the path, whichever route matched first."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from kurs_gateway import problems


def app_with_two_routes_on_one_path() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/things")
    async def list_things() -> dict[str, str]:
        return {}

    @app.post("/things")
    async def add_thing() -> dict[str, str]:
        return {}

    return app


async def test_405_allows_every_method_of_the_path() -> None:
    transport = httpx.ASGITransport(app=app_with_two_routes_on_one_path())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        reply = await client.request("OPTIONS", "/things")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, POST"
    assert reply.headers["content-type"] == "application/problem+json"


def test_every_operation_documents_the_key_and_limit_statuses() -> None:
    schema = problems.document(app_with_two_routes_on_one_path().openapi())
    for operation in schema["paths"]["/things"].values():
        assert {"400", "401", "403", "429", "503"} <= set(operation["responses"])
