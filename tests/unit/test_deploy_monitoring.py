"""Monitoring: the operator's objects or the plain files, the autoscalers' metrics and the
adapter's rules, the dashboard's data source."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.unit.deploy_manifests import (
    ROOT,
    of_kind,
    pod_spec,
)


def test_the_monitoring_component_carries_current_copies():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_monitoring.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


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
