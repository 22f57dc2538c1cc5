"""Writes the monitoring files of the Kubernetes components from their sources under deploy/.

kustomize reads only files inside a kustomization's own directory, so the components carry
copies, and the Prometheus-operator component carries objects made from the same sources: the
PrometheusRule (the recording rules and alerts), the prometheus-adapter chart's values (the
adapter rules). The sources stay where the local stack and promtool's tests use them.
`--check` (run by the tests) fails on a stale file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "deploy" / "kubernetes" / "components"
PLAIN = COMPONENTS / "monitoring" / "files"
OPERATOR = COMPONENTS / "prometheus-operator"
RULES = [
    "deploy/prometheus/rules/tagllm.rules.yml",
    "deploy/prometheus/rules/tagllm.alerts.yml",
    "deploy/prometheus/kubernetes-rules/tagllm.kubernetes.alerts.yml",
]
ADAPTER = "deploy/prometheus/prometheus-adapter.yaml"
DASHBOARD = "deploy/grafana/dashboards/tagllm.json"
COPIES = {
    PLAIN / "prometheus.yml": "deploy/prometheus/prometheus-kubernetes.yml",
    PLAIN / "tagllm.rules.yml": RULES[0],
    PLAIN / "tagllm.alerts.yml": RULES[1],
    PLAIN / "tagllm.kubernetes.alerts.yml": RULES[2],
    PLAIN / "prometheus-adapter.yaml": ADAPTER,
    PLAIN / "tagllm.json": DASHBOARD,
    OPERATOR / "files" / "tagllm.json": DASHBOARD,
}
LABELS = {"app.kubernetes.io/name": "tagllm", "app.kubernetes.io/component": "monitoring"}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL expressions) as literal blocks, as in their sources."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def _dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=110)


def _generated_header(sources: list[str]) -> str:
    lines = "".join(f"#   {source}\n" for source in sources)
    return f"# Written by scripts/sync_monitoring.py from these files; edit them, not this one:\n{lines}"


def prometheus_rule() -> str:
    groups = [group for path in RULES for group in yaml.safe_load((ROOT / path).read_text())["groups"]]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tagllm", "labels": LABELS},
        "spec": {"groups": groups},
    }
    return _generated_header(RULES) + _dump(rule)


def adapter_values() -> str:
    rules = yaml.safe_load((ROOT / ADAPTER).read_text())["rules"]
    values = {
        # The Prometheus the operator runs (its Service prometheus-operated); change to yours.
        "prometheus": {"url": "http://prometheus-operated.monitoring.svc", "port": 9090},
        "rules": {"default": False, "custom": rules},
    }
    comment = (
        "# Values for the prometheus-community/prometheus-adapter chart: the custom per-pod metrics\n"
        "# the HorizontalPodAutoscalers use (helm upgrade --install prometheus-adapter\n"
        "# prometheus-community/prometheus-adapter -n monitoring -f prometheus-adapter-values.yaml).\n"
    )
    return _generated_header([ADAPTER]) + comment + _dump(values)


def expected() -> dict[Path, bytes]:
    files = {target: (ROOT / source).read_bytes() for target, source in COPIES.items()}
    files[OPERATOR / "prometheus-rule.yaml"] = prometheus_rule().encode()
    files[OPERATOR / "prometheus-adapter-values.yaml"] = adapter_values().encode()
    return files


def stale() -> list[str]:
    """The files that differ from what their sources make (or are missing)."""
    return [
        str(path.relative_to(ROOT))
        for path, content in expected().items()
        if not path.exists() or path.read_bytes() != content
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    if args.check:
        if names := stale():
            sys.exit(f"stale: {', '.join(names)} (run scripts/sync_monitoring.py)")
        return
    for path, content in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


if __name__ == "__main__":
    main()
