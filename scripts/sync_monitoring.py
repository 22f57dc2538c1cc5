"""Copies the monitoring files into the Kubernetes `monitoring` component.

kustomize reads only files inside a kustomization's own directory, so the component carries
copies of the Prometheus rules, the scrape configuration and the Grafana dashboard; their
sources stay where the local stack uses them. `--check` (run by the tests) fails on a stale copy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "deploy" / "kubernetes" / "components" / "monitoring" / "files"
SOURCES = {
    "prometheus.yml": "deploy/prometheus/prometheus-kubernetes.yml",
    "tagllm.rules.yml": "deploy/prometheus/rules/tagllm.rules.yml",
    "tagllm.alerts.yml": "deploy/prometheus/rules/tagllm.alerts.yml",
    "tagllm.kubernetes.alerts.yml": "deploy/prometheus/kubernetes-rules/tagllm.kubernetes.alerts.yml",
    "prometheus-adapter.yaml": "deploy/prometheus/prometheus-adapter.yaml",
    "tagllm.json": "deploy/grafana/dashboards/tagllm.json",
}


def stale() -> list[str]:
    """The copies that differ from their sources (or are missing)."""
    return [
        name
        for name, source in SOURCES.items()
        if not (COMPONENT / name).exists() or (COMPONENT / name).read_bytes() != (ROOT / source).read_bytes()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale copies")
    args = parser.parse_args()
    if args.check:
        if names := stale():
            sys.exit(f"stale copies in {COMPONENT}: {', '.join(names)} (run scripts/sync_monitoring.py)")
        return
    COMPONENT.mkdir(parents=True, exist_ok=True)
    for name, source in SOURCES.items():
        (COMPONENT / name).write_bytes((ROOT / source).read_bytes())


if __name__ == "__main__":
    main()
