"""The region overlays: each region's role (one primary, the others replicas) and its labels and
settings, and the live-collection component that turns on the collector's internet egress."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from support.k8s import (
    COMPONENTS_DIR,
    KUBECTL,
    OVERLAYS_DIR,
    REGION_LABEL,
    REGIONS,
    ROLE_LABEL,
    containers,
    of_kind,
    render,
)


@pytest.mark.parametrize("overlay", REGIONS)
def test_region_roles(overlay: str) -> None:
    """One primary region ingests; the others serve reads and keep the writers at 0."""
    found = of_kind(render(overlay), "Deployment")
    role = found["kurs-rates"]["metadata"]["labels"][ROLE_LABEL]
    assert found["kurs-rates"]["metadata"]["labels"][REGION_LABEL] == overlay
    writers = {found[name]["spec"]["replicas"] for name in ("kurs-collector", "kurs-validator")}
    assert writers == ({1} if role == "primary" else {0}), f"{overlay} ({role}): {writers}"
    # Regions share PostgreSQL/Redis (replicas) through the Secret, not an embedded store.
    (rates,) = containers(found["kurs-rates"])
    env = {e["name"]: e for e in rates["env"]}
    for var in ("KURS_RATES_DATABASE_URL", "KURS_RATES_REDIS_URL"):
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == "kurs-datastores", var
    ingress = of_kind(render(overlay), "Ingress")["kurs-gateway"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["external-dns.alpha.kubernetes.io/set-identifier"] == overlay
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert f"{overlay}.api.kurs.example.com" in hosts


def test_exactly_one_primary_region() -> None:
    roles = {
        region: of_kind(render(region), "Deployment")["kurs-rates"]["metadata"]["labels"][ROLE_LABEL]
        for region in REGIONS
    }
    assert sorted(roles.values()).count("primary") == 1, roles


def test_live_collection_component(tmp_path: Path) -> None:
    """The one component no overlay uses by default still composes onto the primary region."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: cannot render deploy/k8s overlays (kubectl kustomize)")
    # kustomize accepts only relative paths to other kustomizations.
    overlay = os.path.relpath(OVERLAYS_DIR / "eu-west", tmp_path)
    component = os.path.relpath(COMPONENTS_DIR / "live-collection", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{overlay}]\n"
        f"components: [{component}]\n"
    )
    result = subprocess.run(
        [KUBECTL, "kustomize", str(tmp_path)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    objs = tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    (collector,) = containers(of_kind(objs, "Deployment")["kurs-collector"])
    assert {"name": "KURS_COLLECTOR_LIVE", "value": "true"} in collector["env"]
    egress = of_kind(objs, "NetworkPolicy")["kurs-collector-internet"]["spec"]["egress"]
    assert [port["port"] for rule in egress for port in rule["ports"]] == [443]
