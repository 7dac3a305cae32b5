"""Regions drills need root (network namespaces, running PostgreSQL as `postgres`) and `ip`.

Without them every test here is skipped with that reason; a missing Debian package (Patroni,
etcd, HAProxy, pgBackRest) is an error instead: `make regions-deps` installs them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _skip_reason() -> str:
    if os.geteuid() != 0:
        return "regions drills need root (network namespaces; PostgreSQL runs as the postgres user)"
    if shutil.which("ip") is None:
        return "regions drills need the `ip` command (iproute2)"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.regions)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
