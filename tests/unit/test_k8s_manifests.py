"""Every kustomize overlay under deploy/k8s/overlays rendered offline (tests/support/k8s.py) and
its workloads checked: probes, resources, security context, draining, pinned images, environment,
autoscaling and disruption budgets, and the Kubernetes schemas (those of the `kubernetes-validate`
package, offline)."""

from __future__ import annotations

import pytest

from support.k8s import (
    OVERLAYS,
    REGIONS,
    SCHEMA_VERSION,
    SERVICES,
    deployments,
    of_kind,
    overlay_param,
    port_number,
    render,
    selects,
)


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
