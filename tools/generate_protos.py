"""Generate Python stubs (messages, gRPC, and typed .pyi) from protos/ into gen/python/.

Usage: python tools/generate_protos.py [--out DIR] [--check]

--check regenerates into a temporary folder and exits 1 when the committed stubs differ,
so CI fails whenever someone edits a .proto without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen" / "python"


def generate(out: Path) -> None:
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    bindir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    # Make every generated folder a regular, typed package.
    for folder in [out / "kurs", *[p for p in (out / "kurs").rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
        (folder / "py.typed").touch()


def same_tree(a: Path, b: Path) -> list[str]:
    diffs: list[str] = []
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    for rel in sorted(files_a ^ files_b):
        diffs.append(f"only in one tree: {rel}")
    for rel in sorted(files_a & files_b):
        if not filecmp.cmp(a / rel, b / rel, shallow=False):
            diffs.append(f"differs: {rel}")
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true")
    ns = parser.parse_args()
    if not ns.check:
        generate(ns.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "python"
        generate(fresh)
        diffs = same_tree(fresh, OUT)
    if diffs:
        print("generated stubs are out of date; run `make generate`:", *diffs, sep="\n  ")
        return 1
    print("generated stubs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
