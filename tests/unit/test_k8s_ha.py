"""components/postgres-patroni as the region overlays render it, and the per-region settings.

Checks the cross-region HA database (etcd member + Patroni member per region, HAProxy to the
leader, pgBackRest schedules) and that every value an operator must provide comes from the
region's region.env, with nothing left as a bare placeholder in the manifests.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from support.k8s import (
    HA_CRONJOBS,
    HA_DEPLOYMENTS,
    HA_STATEFULSETS,
    OVERLAYS,
    OVERLAYS_DIR,
    REGIONS,
    of_kind,
    render,
)

Obj = dict[str, Any]
CLUSTER_SCOPED = {"Namespace"}
HEALTH_CHECK = "external-dns.alpha.kubernetes.io/aws-health-check-id"
HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"


def region_env(region: str) -> dict[str, str]:
    out = {}
    for line in (OVERLAYS_DIR / region / "region.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def pod_specs(objs: tuple[Obj, ...]) -> dict[str, Obj]:
    """Pod template spec of every HA workload (Deployments, StatefulSets, CronJobs)."""
    out = {}
    for obj in objs:
        name = obj["metadata"]["name"]
        if obj["kind"] == "CronJob" and name in HA_CRONJOBS:
            out[name] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] in ("Deployment", "StatefulSet") and name in HA_DEPLOYMENTS | HA_STATEFULSETS:
            out[name] = obj["spec"]["template"]["spec"]
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_is_in_the_kurs_namespace(overlay: str) -> None:
    for obj in render(overlay):
        if obj["kind"] not in CLUSTER_SCOPED:
            where = obj["metadata"].get("namespace")
            assert where == "kurs", f"{overlay}: {obj['kind']}/{obj['metadata']['name']} in {where}"


@pytest.mark.parametrize("overlay", REGIONS)
def test_ha_database_workloads(overlay: str) -> None:
    objs = render(overlay)
    sets = of_kind(objs, "StatefulSet")
    assert set(sets) == HA_STATEFULSETS, overlay
    for name in HA_STATEFULSETS:
        assert sets[name]["spec"]["replicas"] == 1, f"{overlay}/{name}: one member per region"
    assert set(of_kind(objs, "CronJob")) == HA_CRONJOBS
    specs = pod_specs(objs)
    assert set(specs) == HA_DEPLOYMENTS | HA_STATEFULSETS | HA_CRONJOBS
    for name, pod in specs.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        volumes = {v["name"] for v in pod.get("volumes", [])}
        claims = {
            c["metadata"]["name"] for c in sets.get(name, {}).get("spec", {}).get("volumeClaimTemplates", [])
        }
        for container in pod["containers"]:
            image: str = container["image"]
            assert image.startswith("registry.example.com/kurs/kurs-ha:"), f"{name}: {image}"
            assert not image.endswith(":latest"), name
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert set(container["resources"]["limits"]) >= {"cpu", "memory"}, name
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}/{container['name']}: no /tmp"
            for volume in mounts.values():
                claims = {
                    c["metadata"]["name"]
                    for c in sets.get(name, {}).get("spec", {}).get("volumeClaimTemplates", [])
                }
                assert volume in volumes | claims, f"{name}: mount {volume} has no volume"
            if name not in HA_CRONJOBS:
                assert container.get("livenessProbe"), name
                assert container.get("readinessProbe"), name
    for job in of_kind(objs, "CronJob").values():
        assert job["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("overlay", REGIONS)
def test_patroni_synchronous_with_archiving_and_haproxy_to_the_leader(overlay: str) -> None:
    objs = render(overlay)
    config_maps = {name.rsplit("-", 1)[0]: cm for name, cm in of_kind(objs, "ConfigMap").items()}
    patroni = yaml.safe_load(config_maps["kurs-patroni"]["data"]["patroni.yml"])
    dcs = patroni["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["archive_command"].startswith("pgbackrest ")
    assert "archive-push %p" in dcs["postgresql"]["parameters"]["archive_command"]
    haproxy = config_maps["kurs-pg-proxy"]["data"]["haproxy.cfg"]
    assert "option httpchk GET /primary" in haproxy
    assert "on-marked-down shutdown-sessions" in haproxy
    # rates reaches the database only through the proxy (policy) in these regions.
    egress = of_kind(objs, "NetworkPolicy")["kurs-rates-postgres"]["spec"]["egress"]
    assert egress[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "kurs-pg-proxy"


def test_one_etcd_cluster_and_one_patroni_cluster_across_the_regions() -> None:
    envs = {region: region_env(region) for region in REGIONS}
    clusters = {env["etcd-initial-cluster"] for env in envs.values()}
    assert len(clusters) == 1, "every region must list the same etcd members"
    members = dict(m.split("=", 1) for m in clusters.pop().split(","))
    assert set(members) == set(REGIONS), "one etcd member per region: losing one keeps the quorum"
    for region, env in envs.items():
        assert env["region"] == region
        assert members[region] == f"http://{env['etcd-advertise-host']}:2380"
        hosts = env["etcd-hosts"].split(",")
        assert {h.split(":")[0] for h in hosts} == {envs[r]["etcd-advertise-host"] for r in REGIONS}
        pg = [env[f"pg-member-{i}"] for i in (1, 2, 3)]
        assert pg[0] == env["pg-advertise-host"], f"{region}: its own member first"
        assert set(pg) == {envs[r]["pg-advertise-host"] for r in REGIONS}
        objs = render(region)
        services = of_kind(objs, "Service")
        assert services["kurs-etcd"]["metadata"]["annotations"][HOSTNAME] == env["etcd-advertise-host"]
        assert (
            services["kurs-postgres-member"]["metadata"]["annotations"][HOSTNAME] == env["pg-advertise-host"]
        )
    assert len({env["backup-bucket"] for env in envs.values()}) == 1, "one pgBackRest repository"


@pytest.mark.parametrize("overlay", REGIONS)
def test_route53_health_check_id_is_region_configuration(overlay: str) -> None:
    """The ID is set in region.env (with its explanation) and reaches the Ingress annotation."""
    env_text = (OVERLAYS_DIR / overlay / "region.env").read_text()
    value = region_env(overlay)["route53-health-check-id"]
    assert value, overlay
    above = env_text.split("route53-health-check-id=")[0].splitlines()[-6:]
    assert any("Terraform" in line for line in above), "the value must say where it comes from"
    ingress = of_kind(render(overlay), "Ingress")["kurs-gateway"]
    assert ingress["metadata"]["annotations"][HEALTH_CHECK] == value
    rendered = "\n".join(yaml.safe_dump(o) for o in render(overlay))
    assert "from-region-env" not in rendered
    assert rendered.count("REPLACE") == rendered.count(value) * ("REPLACE" in value)


def test_kubernetes_patroni_settings_match_the_drills() -> None:
    """What the failover drill proves (deploy/regions/patroni.yml) is what Kubernetes runs."""
    root = OVERLAYS_DIR.parents[2]
    drill = yaml.safe_load((root / "deploy" / "regions" / "patroni.yml").read_text())
    k8s = yaml.safe_load(
        (root / "deploy" / "k8s" / "components" / "postgres-patroni" / "patroni.yml").read_text()
    )
    for key in ("synchronous_mode", "synchronous_mode_strict", "maximum_lag_on_failover"):
        assert k8s["bootstrap"]["dcs"][key] == drill["bootstrap"]["dcs"][key], key
    for key in ("use_pg_rewind", "use_slots"):
        assert k8s["bootstrap"]["dcs"]["postgresql"][key] == drill["bootstrap"]["dcs"]["postgresql"][key], key
    assert k8s["bootstrap"]["initdb"] == drill["bootstrap"]["initdb"]
    for key in ("remove_data_directory_on_rewind_failure", "remove_data_directory_on_diverged_timelines"):
        assert k8s["postgresql"][key] is drill["postgresql"][key] is True, key
    assert {"checkpoint": "fast"} in k8s["postgresql"]["basebackup"]
