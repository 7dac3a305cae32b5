"""The deploy/k8s overlays as rendered offline by `kubectl kustomize` (no cluster needed), and
what the manifest tests know about them: the Kurs services, the flows allowed between them, the
HA workloads and the region labels; helpers to pick objects, containers, ports and selectors.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = ROOT / "deploy" / "k8s" / "overlays"
COMPONENTS_DIR = ROOT / "deploy" / "k8s" / "components"
OVERLAYS = sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").is_file())
REGIONS = ("eu-west", "us-east", "ap-southeast")
KUBECTL = shutil.which("kubectl")
# Oldest Kubernetes minor the manifests must validate against (native gRPC probes: 1.27+).
SCHEMA_VERSION = "1.30.0"

# Deployment name -> (environment prefix, kind of probe, port name).
SERVICES = {
    "kurs-collector": ("KURS_COLLECTOR_", "grpc", "grpc"),
    "kurs-validator": ("KURS_VALIDATOR_", "grpc", "grpc"),
    "kurs-rates": ("KURS_RATES_", "grpc", "grpc"),
    "kurs-gateway": ("KURS_GATEWAY_", "http", "http"),
}
# Who may open a connection to whom inside the namespace, and nothing else.
ALLOWED_FLOWS = {
    ("kurs-collector", "kurs-validator"),
    ("kurs-validator", "kurs-rates"),
    ("kurs-gateway", "kurs-rates"),
    ("kurs-gateway", "kurs-collector"),  # feed status: KURS_GATEWAY_COLLECTOR_ADDRESS
    ("kurs-gateway", "kurs-validator"),  # quality and anomalies: KURS_GATEWAY_VALIDATOR_ADDRESS
}
# Workloads of components/postgres-patroni (not Kurs services: own image, no KURS_ env).
HA_DEPLOYMENTS = {"kurs-pg-proxy"}
HA_STATEFULSETS = {"kurs-etcd", "kurs-postgres"}
HA_CRONJOBS = {"kurs-pg-backup-full", "kurs-pg-backup-diff"}
REGION_LABEL = "kurs.example/region"
ROLE_LABEL = "kurs.example/region-role"

Obj = dict[str, Any]

overlay_param = pytest.mark.parametrize("overlay", OVERLAYS)


@functools.cache
def _render(overlay: str) -> tuple[Obj, ...]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(OVERLAYS_DIR / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(overlay: str) -> tuple[Obj, ...]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: cannot render deploy/k8s overlays (kubectl kustomize)")
    return _render(overlay)


def of_kind(objs: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def containers(deployment: Obj) -> list[Obj]:
    containers: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def deployments(overlay: str) -> Iterator[tuple[str, Obj, Obj]]:
    """(name, deployment, its one container) for each Kurs service."""
    found = of_kind(render(overlay), "Deployment")
    assert set(SERVICES) <= set(found), f"{overlay}: Deployments {sorted(found)}"
    assert set(found) - set(SERVICES) <= HA_DEPLOYMENTS, f"{overlay}: Deployments {sorted(found)}"
    for name in SERVICES:
        (container,) = containers(found[name])
        yield name, found[name], container


def port_number(container: Obj, name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert name in ports, f"{container['name']}: no containerPort named {name!r}"
    number: int = ports[name]
    return number


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """matchLabels-only selectors (the only kind these manifests use)."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
