"""A pod's life: autoscalers and disruption budgets, drain times and bounded queues, probes,
Secrets that fail closed and are readable, the GPU nodes and the checkpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy_manifests import (
    KUBERNETES,
    KUBERNETES_VERSIONS,
    KUSTOMIZE,
    TARGETS,
    WORKLOADS,
    containers,
    env,
    is_custom,
    named,
    of_kind,
    pod_spec,
)


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
