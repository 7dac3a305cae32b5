"""Render every kustomize overlay under deploy/k8s/overlays offline and check the result.

`kubectl kustomize` renders (no cluster needed); PyYAML parses. The schema check uses the
Kubernetes JSON schemas that ship inside the `kubernetes-validate` package (offline).
"""

from __future__ import annotations

import functools
import os
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


def test_expected_overlays_exist() -> None:
    assert set(REGIONS) <= set(OVERLAYS), OVERLAYS
    assert "local" in OVERLAYS


@overlay_param
def test_probes(overlay: str) -> None:
    for name, _, container in deployments(overlay):
        _, kind, port_name = SERVICES[name]
        port = port_number(container, port_name)
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name)
            assert probe, f"{overlay}/{name}: no {probe_name}"
            if kind == "grpc":
                # Native gRPC probe against grpc.health.v1 (the "" service).
                assert probe.get("grpc", {}).get("port") == port, f"{overlay}/{name}: {probe_name}={probe}"
                assert "service" not in probe["grpc"]
            else:
                get = probe.get("httpGet", {})
                assert get.get("port") in (port, port_name), f"{overlay}/{name}: {probe_name}={probe}"
        if kind == "http":
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@overlay_param
def test_resources(overlay: str) -> None:
    for name, _, container in deployments(overlay):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert set(resources.get(bound, {})) >= {"cpu", "memory"}, f"{overlay}/{name}: {resources}"


@overlay_param
def test_security_context(overlay: str) -> None:
    for name, deployment, container in deployments(overlay):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True, name
        assert ctx["allowPrivilegeEscalation"] is False, name
        assert ctx["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in ctx["capabilities"], name
        # A read-only root needs a writable /tmp: an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert "/tmp" in mounts, f"{overlay}/{name}: no /tmp mount"
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{overlay}/{name}: /tmp is not an emptyDir"
        for mount_name in mounts.values():
            assert mount_name in volumes, f"{overlay}/{name}: mount {mount_name} has no volume"


@overlay_param
def test_draining(overlay: str) -> None:
    """preStop sleep, then SIGTERM drains: the grace period must cover both. Every service takes
    its drain from the shared ConfigMap (<PREFIX>SHUTDOWN_GRACE_SECONDS, the settings field of
    kurs_common.settings.ServiceSettings), so the drain checked is the one each process uses."""
    config_maps = of_kind(render(overlay), "ConfigMap")
    for name, deployment, container in deployments(overlay):
        variable = SERVICES[name][0] + "SHUTDOWN_GRACE_SECONDS"
        env = {e["name"]: e for e in container["env"]}
        assert variable in env, f"{overlay}/{name}: no {variable}"
        ref = env[variable].get("valueFrom", {}).get("configMapKeyRef", {})
        assert ref.get("name", "").startswith("kurs-config-"), f"{overlay}/{name}: {variable} {env[variable]}"
        assert ref.get("key") == "shutdown-grace-seconds", f"{overlay}/{name}: {variable} {env[variable]}"
        drain = float(config_maps[ref["name"]]["data"]["shutdown-grace-seconds"])
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", f"{overlay}/{name}: preStop {command}"
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= float(command[1]) + drain + 5, f"{overlay}/{name}: grace {grace}"


@overlay_param
def test_services_match_deployments(overlay: str) -> None:
    services = of_kind(render(overlay), "Service")
    for name, deployment, container in deployments(overlay):
        assert name in services, f"{overlay}: no Service {name}"
        spec = services[name]["spec"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"], name
        assert selects({"matchLabels": spec["selector"]}, pod_labels), f"{overlay}/{name}: selector"
        assert selects(deployment["spec"]["selector"], pod_labels), f"{overlay}/{name}: own selector"
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in spec["ports"]:
            target = port["targetPort"]
            assert target in container_ports or target in container_ports.values(), (
                f"{overlay}/{name}: targetPort {target} not in {container_ports}"
            )


@overlay_param
def test_gateway_stream_port(overlay: str) -> None:
    """The native stream port is one number in the env, the pod, the Service and the policies."""
    objs = render(overlay)
    gateway = next(c for name, _, c in deployments(overlay) if name == "kurs-gateway")
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    stream = port_number(gateway, "stream")
    assert env["KURS_GATEWAY_STREAM_PORT"] == str(stream), overlay
    service_ports = {
        p["name"]: p["targetPort"] for p in of_kind(objs, "Service")["kurs-gateway"]["spec"]["ports"]
    }
    assert service_ports.get("stream") == "stream", f"{overlay}: Service port 'stream' {service_ports}"
    labels = next(d for name, d, _ in deployments(overlay) if name == "kurs-gateway")["spec"]["template"][
        "metadata"
    ]
    open_to_outside = {
        port["port"]
        for p in of_kind(objs, "NetworkPolicy").values()
        if selects(p["spec"]["podSelector"], labels["labels"])
        for rule in p["spec"].get("ingress", [])
        if "from" not in rule or any("namespaceSelector" in peer for peer in rule["from"])
        for port in rule.get("ports", [])
    }
    assert {port_number(gateway, "http"), stream} <= open_to_outside, f"{overlay}: {open_to_outside}"
    for ingress in of_kind(objs, "Ingress").values():
        paths = {
            path["path"]: path["backend"]["service"]["port"]
            for rule in ingress["spec"]["rules"]
            for path in rule["http"]["paths"]
        }
        assert paths.get("/ws/rates/stream") == {"name": "stream"}, f"{overlay}: ingress {paths}"


@overlay_param
def test_images_pinned(overlay: str) -> None:
    images = set()
    for name, _, container in deployments(overlay):
        image: str = container["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{overlay}/{name}: {image} has no tag"
        assert "/" not in tag, f"{overlay}/{name}: {image} has no tag"
        assert tag != "latest", f"{overlay}/{name}: {image}"
        assert container["imagePullPolicy"] != "Always", name
        assert container["command"] == ["python", "-m", name.replace("kurs-", "kurs_")], name
        images.add(image)
    assert len(images) == 1, f"{overlay}: one image for all services, got {images}"


@overlay_param
def test_environment(overlay: str) -> None:
    objs = render(overlay)
    config_maps = of_kind(objs, "ConfigMap")
    services = of_kind(objs, "Service")
    for name, _, container in deployments(overlay):
        prefix = SERVICES[name][0]
        assert "envFrom" not in container, f"{overlay}/{name}: envFrom bypasses the prefix check"
        env = {e["name"]: e for e in container["env"]}
        for var, entry in env.items():
            assert var.startswith(prefix), f"{overlay}/{name}: {var} lacks {prefix}"
            ref = entry.get("valueFrom", {})
            assert len(ref) <= 1, f"{overlay}/{name}: {var} has two sources {ref}"
            if "configMapKeyRef" in ref:
                key_ref = ref["configMapKeyRef"]
                assert key_ref["key"] in config_maps[key_ref["name"]]["data"], f"{overlay}/{name}: {var}"
        # Listen on every interface, on the declared container port.
        port_name = SERVICES[name][2]
        port = port_number(container, port_name)
        if name == "kurs-gateway":
            assert env[prefix + "HOST"]["value"] == "0.0.0.0"
            assert env[prefix + "PORT"]["value"] == str(port)
        else:
            assert env[prefix + "ADDRESS"]["value"] == f"0.0.0.0:{port}"
        # Peer addresses name a Service of this overlay on one of its ports.
        for var, entry in env.items():
            if var.endswith("_ADDRESS") and var != prefix + "ADDRESS":
                host, _, peer_port = entry["value"].rpartition(":")
                assert host in services, f"{overlay}/{name}: {var}={entry['value']}"
                assert int(peer_port) in {p["port"] for p in services[host]["spec"]["ports"]}, var


def _peers(rule_peers: list[Obj], pods: dict[str, dict[str, str]]) -> set[str]:
    found: set[str] = set()
    for peer in rule_peers:
        if set(peer) == {"podSelector"}:
            found |= {name for name, labels in pods.items() if selects(peer["podSelector"], labels)}
    return found


@overlay_param
def test_network_policies(overlay: str) -> None:
    objs = render(overlay)
    policies = list(of_kind(objs, "NetworkPolicy").values())
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d, _ in deployments(overlay)}
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert default_deny, f"{overlay}: no default-deny NetworkPolicy"
    ingress_flows: set[tuple[str, str]] = set()
    egress_flows: set[tuple[str, str]] = set()
    for policy in policies:
        spec = policy["spec"]
        targets = {name for name, labels in pods.items() if selects(spec["podSelector"], labels)}
        for rule in spec.get("ingress", []):
            sources = _peers(rule.get("from", []), pods)
            ingress_flows |= {(src, dst) for src in sources for dst in targets}
            if "from" not in rule:
                # Open to any source: only the public edge may be.
                assert targets == {"kurs-gateway"}, f"{overlay}: {policy['metadata']['name']}"
        for rule in spec.get("egress", []):
            destinations = _peers(rule.get("to", []), pods)
            egress_flows |= {(src, dst) for src in targets for dst in destinations}
    assert ingress_flows == ALLOWED_FLOWS, overlay
    assert egress_flows == ALLOWED_FLOWS, overlay
    # Someone outside the namespace (ingress controller / load balancer) reaches the gateway.
    gateway_rules = [
        rule
        for p in policies
        if selects(p["spec"]["podSelector"], pods["kurs-gateway"])
        for rule in p["spec"].get("ingress", [])
        if "from" not in rule or any("namespaceSelector" in peer for peer in rule["from"])
    ]
    assert gateway_rules, f"{overlay}: nothing outside may reach the gateway"


@overlay_param
def test_autoscaling_and_disruption_budgets(overlay: str) -> None:
    objs = render(overlay)
    hpas = of_kind(objs, "HorizontalPodAutoscaler")
    pdbs = of_kind(objs, "PodDisruptionBudget")
    found = of_kind(objs, "Deployment")
    for name in ("kurs-gateway", "kurs-rates"):
        target = hpas[name]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert 1 <= hpas[name]["spec"]["minReplicas"] <= hpas[name]["spec"]["maxReplicas"]
        assert "replicas" not in found[name]["spec"], f"{overlay}/{name}: replicas fights the HPA"
    for name, deployment, _ in deployments(overlay):
        covering = [
            p
            for p in pdbs.values()
            if selects(p["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(covering) == 1, f"{overlay}/{name}: {len(covering)} PodDisruptionBudgets"


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


@overlay_param
def test_schemas(overlay: str) -> None:
    """Every rendered object is valid (strict: no unknown fields) for the Kubernetes versions."""
    objs = render(overlay)
    validate = pytest.importorskip(
        "kubernetes_validate.utils",
        reason="kubernetes-validate is not installed: schema validation skipped "
        "(pip install kubernetes-validate, or add it to requirements/dev.in)",
    )
    errors = []
    # The oldest supported version, and the newest the package knows (removed fields/APIs).
    for version in sorted({SCHEMA_VERSION, validate.latest_version()}):
        for obj in objs:
            try:
                validate.validate(obj, version, strict=True)
            except validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                errors.append(f"{version} {obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)
