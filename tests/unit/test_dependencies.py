"""One dependency list: pyproject.toml (ranges) and requirements/*.txt (exact pins) agree.

Every dependency that pyproject.toml names (and the SDK's, clients/python/pyproject.toml) is pinned
in requirements/run.txt or dev.txt at a version its range allows; every pin is such a dependency or
needed by one (resolved through the installed distributions' metadata); dev.txt pins everything
run.txt pins, at the same version.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
TOOLING = {"pip", "setuptools", "wheel"}  # pinned in build.txt, left out of the freeze


def project(path: Path) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return data


def declared(group: str) -> list[Requirement]:
    main = project(ROOT / "pyproject.toml")
    runtime = [Requirement(r) for r in main["dependencies"]]  # type: ignore[attr-defined]
    if group == "run":
        sdk = project(ROOT / "clients" / "python" / "pyproject.toml")
        return runtime + [Requirement(r) for r in sdk["dependencies"]]  # type: ignore[attr-defined]
    extras: dict[str, list[str]] = main["optional-dependencies"]  # type: ignore[assignment]
    return [*declared("run"), *(Requirement(r) for r in extras["dev"])]


def pins(name: str) -> dict[NormalizedName, str]:
    out: dict[NormalizedName, str] = {}
    for line in (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert "==" in line, f"{name}: not an exact pin: {line!r}"
        assert ";" not in line, f"{name}: a pin with a marker: {line!r}"
        package, version = line.split("==", 1)
        out[canonicalize_name(package)] = version.strip()
    return out


def closure(roots: list[Requirement]) -> set[NormalizedName]:
    """The names of `roots` and of everything their installed distributions require, extras included."""
    seen: set[NormalizedName] = set()
    todo: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset(r.extras)) for r in roots]
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        first = name not in seen
        seen.add(name)
        if not first and not extras:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker is not None and not any(_applies(child.marker, extra) for extra in ("", *extras)):
                continue
            if canonicalize_name(child.name) not in seen or child.extras:
                todo.append((child, frozenset(child.extras)))
    return seen


def _applies(marker: Marker, extra: str) -> bool:
    return marker.evaluate({"extra": extra})


@pytest.mark.parametrize(("group", "pinfile"), [("run", "run.txt"), ("dev", "dev.txt")])
def test_every_declared_dependency_is_pinned_within_its_range(group: str, pinfile: str) -> None:
    pinned = pins(pinfile)
    problems = []
    for requirement in declared(group):
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not pinned in requirements/{pinfile}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: requirements/{pinfile} pins {version}")
    assert problems == []


@pytest.mark.parametrize(("group", "pinfile"), [("run", "run.txt"), ("dev", "dev.txt")])
def test_every_pin_is_a_declared_dependency_or_needed_by_one(group: str, pinfile: str) -> None:
    needed = closure(declared(group))
    stray = sorted(set(pins(pinfile)) - needed - TOOLING)
    assert stray == [], f"pinned in requirements/{pinfile} but not needed by pyproject.toml's list"


def test_dev_pins_include_the_runtime_pins_at_the_same_versions() -> None:
    run, dev = pins("run.txt"), pins("dev.txt")
    assert {name: (version, dev.get(name)) for name, version in run.items() if dev.get(name) != version} == {}


def test_no_second_list_of_dependencies() -> None:
    assert sorted(p.name for p in (ROOT / "requirements").iterdir()) == ["build.txt", "dev.txt", "run.txt"]
