"""The SDK's private stubs equal a fresh generation from protos/, its version follows the proto
package, and importing it loads no server code."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import kurs_client
from kurs_client._proto import rates_pb2

ROOT = Path(__file__).resolve().parents[3]


def test_sdk_stubs_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "clients" / "python" / "tools" / "generate_stubs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_is_pinned_to_the_proto_package() -> None:
    assert rates_pb2.DESCRIPTOR.package == kurs_client.PROTO_PACKAGE == "kurs.rates.v1"
    proto_major = kurs_client.PROTO_PACKAGE.rsplit(".v", 1)[1]
    assert kurs_client.__version__.split(".")[0] == proto_major
    assert importlib.metadata.version("kurs-client") == kurs_client.__version__


def test_importing_the_sdk_loads_no_server_package() -> None:
    code = (
        "import sys, kurs_client, kurs_client.grpc_transport, kurs_client.rest_transport\n"
        "server = [m for m in sys.modules if m == 'kurs' or m.startswith(('kurs.', 'kurs_common', "
        "'kurs_rates', 'kurs_gateway', 'kurs_collector', 'kurs_validator'))]\n"
        "assert not server, server\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
