"""Who may call whom: network policies in and out, services and their ports, the addresses and
settings in each container's environment, the annotate job's shards and TLS."""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated

import pytest

from tests.unit.deploy_manifests import (
    KUBERNETES,
    TARGETS,
    WORKLOADS,
    containers,
    env,
    of_kind,
    pod_spec,
)


def _peers(target: str, component: str, direction: str) -> list[dict]:
    """The peer clauses (`from` for ingress, `to` for egress) of every policy that selects
    `component`'s pods; a rule without peers allows them from or to anywhere."""
    key = {"ingress": "from", "egress": "to"}[direction]
    peers = []
    for policy in of_kind(target, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector.get("app.kubernetes.io/component", component) != component:
            continue
        for rule in policy["spec"].get(direction, []):
            peers.append({key: rule.get(key, "anywhere"), "ports": [p["port"] for p in rule["ports"]]})
    return peers


def _component_selector(component: str) -> dict:
    return {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": "tagllm", "app.kubernetes.io/component": component}
        }
    }


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_network_policies_let_only_the_intended_callers_in(target):
    (deny,) = [
        p for p in of_kind(target, "NetworkPolicy") if p["metadata"]["name"] == "tagllm-default-deny-ingress"
    ]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    scrape = {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
              "ports": ["metrics"]}  # fmt: skip
    expected = {
        "gateway": [{"from": "anywhere", "ports": ["grpc"]}, scrape],
        "refiner": [{"from": [_component_selector("gateway")], "ports": ["grpc"]}, scrape],
        "model-server": [{"from": [_component_selector("refiner")], "ports": ["grpc"]}, scrape],
        "metrics": [{"from": [_component_selector("refiner")], "ports": ["grpc"]}, scrape],
    }
    canonical = functools.partial(json.dumps, sort_keys=True)
    for component, rules in expected.items():
        allowed = sorted(map(canonical, _peers(target, component, "ingress")))
        assert allowed == sorted(map(canonical, rules)), component


def test_services_select_their_deployment_and_its_ports():
    deployments = of_kind("gpu", "Deployment")
    for service in of_kind("gpu", "Service"):
        selector = service["spec"]["selector"].items()
        matches = [d for d in deployments if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in pod_spec(matches[0])["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_environment_ports_and_addresses_match_containers_and_services():
    services = {s["metadata"]["name"]: s for s in of_kind("gpu", "Service")}
    for deployment in of_kind("gpu", "Deployment"):
        for container in pod_spec(deployment)["containers"]:
            declared = {p["containerPort"] for p in container["ports"]}
            for name, value in env(container).items():
                if name.endswith("_PORT"):
                    assert int(value) in declared, name
                if name.endswith(("_ADDRESS", "_URL")) and value:
                    host, port = re.sub(r"^dns:///", "", value).rsplit(":", 1)
                    assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, name
                    headless = services[host]["spec"].get("clusterIP") == "None"
                    # Balanced over every pod only where each pod has its own DNS record.
                    assert headless == value.startswith("dns:///"), name


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_variable_is_a_setting_of_that_service_with_a_valid_value(target):
    from pydantic import TypeAdapter

    from tagllm.settings import SERVICES

    prefixes = {settings.env_prefix(): settings for settings, _ in SERVICES.values()}
    checked = 0
    for workload in of_kind(target, *WORKLOADS):
        for container in containers(workload):
            for name, value in env(container).items():
                prefix = next((p for p in prefixes if name.startswith(p)), None)
                if prefix is None:
                    continue
                field = prefixes[prefix].model_fields.get(name.removeprefix(prefix).lower())
                assert field is not None, f"{name} is not a setting (tagllm/settings/)"
                kind = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
                TypeAdapter(kind).validate_strings(value)
                checked += 1
    assert checked or target.startswith("annotate")


# -- egress: DNS and the next hop, nothing else


DNS = {
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [53, 53],
}  # fmt: skip


@pytest.mark.parametrize("target", ["gpu", "gpu-tls", "cpu"])
def test_egress_is_denied_but_for_dns_and_the_next_hop(target):
    (deny,) = [
        p for p in of_kind(target, "NetworkPolicy") if p["metadata"]["name"] == "tagllm-default-deny-egress"
    ]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Egress"]}
    download = [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [443]}] if target != "cpu" else []
    expected = {
        "gateway": [DNS, {"to": [_component_selector("refiner")], "ports": ["grpc"]}],
        "refiner": [DNS, {"to": [_component_selector("model-server")], "ports": ["grpc"]},
                    {"to": [_component_selector("metrics")], "ports": ["grpc"]}],
        "model-server": [DNS, *download],
        "metrics": [DNS],
    }  # fmt: skip
    canonical = functools.partial(json.dumps, sort_keys=True)
    for component, rules in expected.items():
        assert sorted(map(canonical, _peers(target, component, "egress"))) == sorted(map(canonical, rules)), (
            component
        )


@pytest.mark.parametrize("target", ["annotate-job", "annotate-job-tls"])
def test_the_annotate_workers_reach_only_the_gateways_and_dns(target):
    expected = [DNS, {"to": [_component_selector("gateway")], "ports": ["grpc"]}]
    canonical = functools.partial(json.dumps, sort_keys=True)
    assert sorted(map(canonical, _peers(target, "annotate", "egress"))) == sorted(map(canonical, expected))


# -- the annotate job: one shard count, a TLS variant


@pytest.mark.parametrize("target", ["annotate-job", "annotate-job-tls"])
def test_the_shard_count_is_the_jobs_completions(target):
    (job,) = of_kind(target, "Job")
    (container,) = pod_spec(job)["containers"]
    assert env(container)["TAGLLM_SHARDS"] == str(job["spec"]["completions"])
    assert "--shard ${JOB_COMPLETION_INDEX}/${TAGLLM_SHARDS}" in " ".join(container["args"])
    text = (KUBERNETES / "jobs" / "annotate" / "job.yaml").read_text()
    assert len(re.findall(rf"\b{job['spec']['completions']}\b", text.split("containers:")[1])) == 0


def test_the_tls_annotate_job_verifies_the_gateway_with_the_ca():
    (job,) = of_kind("annotate-job-tls", "Job")
    (container,) = pod_spec(job)["containers"]
    flags = env(container)["TAGLLM_ANNOTATE_TLS_ARGS"].split()
    assert flags[0] == "--ca"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    (directory,) = [path for path in mounts if flags[1].startswith(path + "/")]
    secret = volumes[mounts[directory]]["secret"]["secretName"]
    (certificate,) = of_kind("annotate-job-tls", "Certificate")
    assert certificate["spec"]["secretName"] == secret  # cert-manager writes ca.crt beside it
    assert "client auth" in certificate["spec"]["usages"]
