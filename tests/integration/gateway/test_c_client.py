"""The C client (clients/c) against a running mesh, under valgrind: no leaks, same digits as REST."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from conftest import Mesh, running_mesh
from support.gateway_http import dead_url

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[3]
CLIENT = ROOT / "clients" / "c"


@pytest.fixture(scope="module")
def test_binary() -> Path:
    """Build the library, example and test program with make (tools/ensure_c_deps.sh installs deps)."""
    built = subprocess.run(["make", "-C", str(CLIENT)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, f"C build failed (run tools/ensure_c_deps.sh):\n{built.stderr}"
    return CLIENT / "build" / "test_kurs"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(recent_history_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("cclient"), recent_history_zip) as m:
        yield m


async def run(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_c_client_under_valgrind(mesh: Mesh, test_binary: Path) -> None:
    valgrind = shutil.which("valgrind")
    assert valgrind, "valgrind is missing (run tools/ensure_c_deps.sh)"
    code, out, err = await run(
        valgrind,
        "--leak-check=full",
        "--error-exitcode=1",
        "--errors-for-leak-kinds=definite,indirect",
        str(test_binary),
        mesh.gateway_url,
        dead_url(),
    )
    assert code == 0, f"{out}\n{err[-4000:]}"
    values = {name: rest.split() for name, _, rest in (line.partition(" ") for line in out.splitlines())}
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as client:
        latest = (await client.get("/rates/latest", params={"base": "USD", "symbols": "EUR"})).json()
        convert = (
            await client.get("/rates/convert", params={"from": "USD", "to": "GBP", "amount": "123.45"})
        ).json()
        params = {"date": "2025-01-17", "base": "EUR", "symbols": "USD"}
        day = (await client.get("/rates/historical", params=params)).json()
    assert values["latest_USD_EUR"] == [latest["rates"]["EUR"]]
    assert values["stale_USD_EUR"] == [latest["rates"]["EUR"]]
    assert values["v6_latest_USD_EUR"] == [latest["rates"]["EUR"]]
    assert values["convert_USD_GBP_123.45"] == [convert["rate"], convert["result"]]
    assert values["v6_convert_USD_GBP_123.45"] == [convert["rate"], convert["result"]]
    assert values["historical_2025-01-17_EUR_USD"] == [day["rates"]["USD"]]
    assert values["v6_historical_2025-01-17_EUR_USD"] == [day["rates"]["USD"]]


async def test_example_program(mesh: Mesh, test_binary: Path) -> None:
    example = test_binary.parent / "kurs-example"
    code, out, err = await run(str(example), mesh.gateway_url, "EUR", "USD", "10")
    assert code == 0, err
    assert out.startswith("10 EUR = ")
    assert "(rate " in out
    assert out.rstrip().endswith("kurs)")
