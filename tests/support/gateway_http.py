"""Helpers of the gateway's HTTP integration tests: a JSON answer read with exact decimals, a client
of the gateway of a running mesh, and a URL nothing answers at."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from conftest import Mesh, running_mesh


def exact(reply: httpx.Response, status: int = 200) -> dict[str, Any]:
    """Parse JSON numbers as Decimal, the way a careful client does (after checking the status)."""
    assert reply.status_code == status, reply.text
    return dict(json.loads(reply.text, parse_float=Decimal, parse_int=Decimal))


@contextlib.asynccontextmanager
async def mesh_client(folder: Path, history_zip: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A mesh on `history_zip` in `folder` and an HTTP client of its gateway."""
    mesh: Mesh
    async with (
        running_mesh(folder, history_zip) as mesh,
        httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as c,
    ):
        yield c


def dead_url() -> str:
    """The URL of a loopback port nothing listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
