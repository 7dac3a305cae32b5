"""Generate the SDK's private gRPC stubs from the repository's protos/ into src/kurs_client/_proto.

Usage: python clients/python/tools/generate_stubs.py [--check]

Only kurs/rates/v1/rates.proto is compiled (the public read API). The output is flattened into
`kurs_client._proto` and its imports are rewritten from `kurs.rates.v1` to that package, so the
SDK never imports the server's `kurs` package. The descriptor keeps its file name
(`kurs/rates/v1/rates.proto`), so it can share a process with the server's own stubs.
--check regenerates into a temporary folder and exits 1 when the committed stubs differ.
Needs grpcio-tools and mypy-protobuf (the repository's dev requirements).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PROTOS = HERE.parent.parent / "protos"
PROTO = "kurs/rates/v1/rates.proto"
OUT = HERE / "src" / "kurs_client" / "_proto"
GENERATED = ("rates_pb2.py", "rates_pb2.pyi", "rates_pb2_grpc.py", "rates_pb2_grpc.pyi")
INIT = '"""Generated gRPC stubs of kurs.rates.v1 (tools/generate_stubs.py); do not edit."""\n'


def generate(out: Path) -> None:
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        include = str(Path(protoc.__file__).parent / "_proto")
        bindir = Path(sys.executable).parent
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTOS}",
                f"-I{include}",
                f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
                f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
                f"--python_out={raw}",
                f"--grpc_python_out={raw}",
                f"--mypy_out={raw}",
                f"--mypy_grpc_out={raw}",
                PROTO,
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
        out.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            text = (raw / "kurs" / "rates" / "v1" / name).read_text()
            text = text.replace("from kurs.rates.v1 import", "from kurs_client._proto import")
            (out / name).write_text(text)
    (out / "__init__.py").write_text(INIT)
    (out / "py.typed").write_text("")


def differences(fresh: Path, committed: Path) -> list[str]:
    out = []
    for name in (*GENERATED, "__init__.py", "py.typed"):
        if not (committed / name).is_file():
            out.append(f"missing: {name}")
        elif not filecmp.cmp(fresh / name, committed / name, shallow=False):
            out.append(f"differs: {name}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed stubs are stale")
    ns = parser.parse_args()
    if not ns.check:
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_proto"
        generate(fresh)
        diffs = differences(fresh, OUT)
    if diffs:
        hint = "kurs_client stubs are out of date; run clients/python/tools/generate_stubs.py:"
        print(hint, *diffs, sep="\n  ")
        return 1
    print("kurs_client stubs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
