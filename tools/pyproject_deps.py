"""Print pyproject.toml's dependency list, one requirement a line (pip's `-r` format), for `make lock`.

    python tools/pyproject_deps.py run   # [project.dependencies]
    python tools/pyproject_deps.py dev   # those plus [project.optional-dependencies].dev

pyproject.toml is the one list of what the project depends on (with ranges); `make lock` installs
it into a scratch venv and freezes the result into requirements/{run,dev}.txt, the exact pins that
`make install` and CI install. tests/unit/test_dependencies.py checks that the two agree.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(group: str, pyproject: Path = PYPROJECT) -> list[str]:
    """The requirement strings of `group` ("run" or "dev"; dev includes run)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    run: list[str] = list(project["dependencies"])
    if group == "run":
        return run
    if group == "dev":
        return run + list(project["optional-dependencies"]["dev"])
    raise ValueError(f"unknown group {group!r}: run or dev")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("run", "dev"):
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(requirements(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
