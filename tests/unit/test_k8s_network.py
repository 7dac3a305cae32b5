"""The network of every rendered overlay: Services match their Deployments' ports, the gateway's
native stream port is exposed and routed, and the NetworkPolicies allow exactly the flows between
the services that the code opens (ALLOWED_FLOWS in tests/support/k8s.py), nothing else."""

from __future__ import annotations

from support.k8s import (
    ALLOWED_FLOWS,
    Obj,
    deployments,
    of_kind,
    overlay_param,
    port_number,
    render,
    selects,
)


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
