"""The layering the architecture promises: no service imports another service's package, the shared
library imports none, and no runtime module imports the test doubles under tests/support."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"collector", "validator", "rates", "gateway"}
SERVICE_PACKAGES = {f"kurs_{name}" for name in SERVICES}


def imported(path: Path) -> set[str]:
    """Top-level names of every module `path` imports (absolute imports, local ones included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_imports_no_other_service(service: str) -> None:
    others = SERVICE_PACKAGES - {f"kurs_{service}"}
    found = {
        str(p.relative_to(ROOT)): sorted(imported(p) & others)
        for p in modules(ROOT / "services" / service)
        if imported(p) & others
    }
    assert found == {}


def test_the_shared_library_imports_no_service() -> None:
    found = {
        str(p.relative_to(ROOT)): sorted(imported(p) & SERVICE_PACKAGES)
        for p in modules(ROOT / "lib")
        if imported(p) & SERVICE_PACKAGES
    }
    assert found == {}


def test_runtime_code_never_imports_the_test_doubles() -> None:
    runtime = [*modules(ROOT / "services"), *modules(ROOT / "lib")]
    assert runtime
    found = [str(p.relative_to(ROOT)) for p in runtime if imported(p) & {"support", "tests", "conftest"}]
    assert found == []
