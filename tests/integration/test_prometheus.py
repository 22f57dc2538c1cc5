"""The stack scraped by a real Prometheus: every recording rule and dashboard query against sent data.

Uses the `prometheus` and `promtool` binaries installed by scripts/setup (Debian's package).
"""

import json
import math
import random
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tagllm.client import TaggingClient, strategy_options
from tagllm.stack.local import LocalStack, StackSettings
from tagllm.vocab import builtin_vocabulary
from tests.conftest import free_ports, png, scraped_total, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tagllm.json"
VOC = builtin_vocabulary("voc")
GPU_PRICE = 2.5  # the metrics service's default
HUMAN_COST = 0.05


def test_promtool_accepts_rules_and_configs():
    subprocess.run(["promtool", "check", "rules", *map(str, RULES)], check=True, capture_output=True)
    # Unit tests of the rules and alerts on synthetic series.
    tests = ROOT / "deploy" / "prometheus" / "tests" / "rules_test.yml"
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # prometheus-kubernetes.yml: Debian builds Prometheus without Kubernetes discovery; its
    # relabelling is run for real below (test_the_kubernetes_scrape_config_...).
    tests = ROOT / "deploy" / "prometheus" / "tests" / "kubernetes_rules_test.yml"
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for config in ("prometheus.yml",):
        subprocess.run(
            ["promtool", "check", "config", "--syntax-only", str(ROOT / "deploy" / "prometheus" / config)],
            check=True,
            capture_output=True,
        )


def test_dashboard_json_is_built_from_its_source():
    built = subprocess.run(
        [sys.executable, "-c", "import build_dashboard, json; print(json.dumps(build_dashboard.build()))"],
        cwd=ROOT / "deploy" / "grafana",
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(built) == json.loads(DASHBOARD.read_text())


def test_the_dashboards_first_row_answers_the_four_questions_and_every_panel_filters():
    board = json.loads(DASHBOARD.read_text())
    assert [v["name"] for v in board["templating"]["list"]] == [
        "datasource",
        "strategy",
        "vocabulary",
        "instance",
    ]
    first_row = [p for p in board["panels"] if p["gridPos"]["y"] == 1]
    assert [p["type"] for p in first_row] == ["stat"] * 4
    assert [p["title"].split("?")[0] for p in first_row] == [
        "Healthy",
        "Fast",
        "Cost vs humans",
        "Agreement F1",
    ]
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            # Every panel reads a recording rule (tagllm:...) and its datasource is the variable.
            assert target["expr"].split("(")[-1].startswith("tagllm:"), target["expr"]
            assert target["datasource"]["uid"] == "${datasource}"


@pytest.fixture(scope="module")
def observed(qwen_dir, tmp_path_factory):
    settings = StackSettings(
        model_dir=qwen_dir,
        run_dir=tmp_path_factory.mktemp("observed"),
        **free_ports(),
        prometheus=True,
        scrape_interval="1s",
    )
    with LocalStack(settings) as stack:
        yield stack


def query(stack, expr: str) -> list[dict]:
    s = stack.settings
    url = f"http://{s.host}:{s.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    reply = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def value(stack, expr: str) -> float:
    result = query(stack, expr)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def holds(stack, expr: str, condition: Callable[[list[dict]], bool], what: str) -> None:
    """Waits for the result of `expr` to meet `condition` (rules evaluate every second over
    scrapes every second); fails naming the result it last had."""
    last: list[dict] = []

    def reached() -> bool:
        last[:] = query(stack, expr)
        return condition(last)

    try:
        wait_until(reached, 30, what, 0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last {last}") from None


def settles_at(stack, expr: str, expected: float) -> None:
    holds(stack, expr, lambda r: len(r) == 1 and float(r[0]["value"][1]) == pytest.approx(expected),
          f"{expr} == {expected}")  # fmt: skip


def gives_a_number(stack, expr: str) -> None:
    """Each rule group evaluates on its own clock: under load, a quantile's group can still read
    NaN (no rate yet) after another group has counted the new samples."""
    holds(stack, expr, lambda r: any(math.isfinite(float(x["value"][1])) for x in r), f"a number from {expr}")


def f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn)


def test_rules_and_panels_match_what_was_tagged(observed):
    stack = observed
    # Two scrapes of the zero-valued series first, so rates count every image tagged below.
    wait_until(lambda: query(stack, 'count_over_time(tagllm_images_total{vocabulary="voc"}[1m]) >= 2'),
               60, "two scrapes of the metrics service")  # fmt: skip
    rng = random.Random(7)
    sent = {"tagllm": [], "multi_option": []}
    with TaggingClient(stack.settings.gateway_address) as client:
        for i in range(6):
            reference = sorted(rng.sample(VOC.names, 3))
            for strategy in sent:
                response = client.tag(
                    png(60 + i, 50, (i * 30, 80, 120)), vocabulary="voc",
                    options=strategy_options(strategy), reference_labels=reference,
                )  # fmt: skip
                sent[strategy].append((response, set(reference)))
    wait_until(lambda: query(stack, 'sum(tagllm_images_total{vocabulary="voc"}) == 12'), 60, "the records")

    for strategy, results in sent.items():
        labels = [({label.name for label in r.result.labels}, ref) for r, ref in results]
        tp = sum(len(got & ref) for got, ref in labels)
        fp = sum(len(got - ref) for got, ref in labels)
        fn = sum(len(ref - got) for got, ref in labels)
        assert tp + fp > 0, f"the tiny model labels some of these pictures with {strategy}"
        where = f'{{strategy="{strategy}",vocabulary="voc"}}'
        settles_at(stack, f"tagllm:agreement_precision:ratio_rate5m{where}", tp / (tp + fp))
        settles_at(stack, f"tagllm:agreement_recall:ratio_rate5m{where}", tp / (tp + fn))
        settles_at(stack, f"tagllm:agreement_f1:ratio_rate5m{where}", f1(tp, fp, fn))
        settles_at(stack, f"tagllm:agreement_f1:ratio_rate1h{where}", f1(tp, fp, fn))

        name = min(results[0][1])  # a class the first image's reference has
        c_tp = sum(name in got and name in ref for got, ref in labels)
        c_fp = sum(name in got and name not in ref for got, ref in labels)
        c_fn = sum(name in ref and name not in got for got, ref in labels)
        class_where = f'{{strategy="{strategy}",vocabulary="voc",label="{name}"}}'
        settles_at(stack, f"tagllm:class_f1:ratio_rate5m{class_where}", f1(c_tp, c_fp, c_fn))

        images = len(results)
        compute = sum(r.result.usage.model_compute_seconds for r, _ in results)
        per_1000 = 1000 * compute * GPU_PRICE / 3600 / images
        s = f'{{strategy="{strategy}"}}'
        settles_at(stack, f"tagllm:gpu_cost_dollars_per_1000_images:rate5m{s}", per_1000)
        settles_at(stack, f"tagllm:gpu_seconds_per_1000_images:rate5m{s}", 1000 * compute / images)
        settles_at(stack, f"tagllm:cost_ratio_to_human:rate5m{s}", per_1000 / 1000 / HUMAN_COST)
        calls = sum(r.result.usage.mllm_calls for r, _ in results) / images
        settles_at(stack, f"tagllm:mllm_calls_per_image:rate5m{s}", calls)
    assert value(stack, "tagllm:human_cost_dollars_per_1000_images") == pytest.approx(1000 * HUMAN_COST)
    verified = sum(len(r.result.candidates) for r, _ in sent["tagllm"])
    confirmed = sum(len(r.result.labels) for r, _ in sent["tagllm"])
    assert verified > 0, "the tiny model proposes candidates for some of these pictures"
    settles_at(stack, 'tagllm:candidate_confirmation:ratio_rate5m{strategy="tagllm"}', confirmed / verified)

    # Every recording rule and every panel query returns data, with at least one number.
    records = [r["record"] for f in RULES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]
               if "record" in r]  # fmt: skip
    # Panel queries with the dashboard's variables set to "all".
    panels = [
        t["expr"].replace("$strategy", ".*").replace("$vocabulary", ".*").replace("$instance", ".*")
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p.get("targets", [])
    ]
    assert len(records) > 20 and len(panels) > 20
    # The daily and hourly windows see the same samples here, so the drop alert's input is zero.
    assert value(
        stack, 'tagllm:agreement_f1:ratio_rate1d{strategy="tagllm",vocabulary="voc"}'
    ) == pytest.approx(value(stack, 'tagllm:agreement_f1:ratio_rate1h{strategy="tagllm",vocabulary="voc"}'))
    for expr in records + panels:
        gives_a_number(stack, expr)


def metric(stack, port: int, name: str) -> float:
    return scraped_total(f"http://{stack.settings.host}:{port}/metrics", name)


def test_killing_the_metrics_service_does_not_fail_tagging_and_restarting_resumes(observed):
    stack = observed
    s = stack.settings
    metrics = stack.processes["metrics"]
    metrics.stop(grace=0)
    assert not metrics.running
    with TaggingClient(s.gateway_address) as client:
        for i in range(4):
            response = client.tag(png(30 + i, 30), vocabulary="voc", options=strategy_options("binary"),
                                  reference_labels=["cat"], timeout=60)  # fmt: skip
            assert response.result.usage.mllm_calls == 20
    wait_until(lambda: metric(stack, s.refiner_metrics_port, "tagllm_metrics_send_failures_total") > 0,
               60, "a failed send")  # fmt: skip
    # The refiner hands each record to its sender after answering: all four are held.
    wait_until(lambda: metric(stack, s.refiner_metrics_port, "tagllm_metrics_records_buffered") >= 4, 30,
               "the four records held for the metrics service")  # fmt: skip
    assert metric(stack, s.refiner_metrics_port, "tagllm_metrics_records_buffered") == 4
    metrics.start()
    wait_until(lambda: _exported_images(stack, "binary") == 4, 60, "the buffered records after the restart")
    assert metric(stack, s.refiner_metrics_port, "tagllm_metrics_records_dropped_total") == 0
    assert metric(stack, s.refiner_metrics_port, "tagllm_metrics_records_buffered") == 0


def _exported_images(stack, strategy: str) -> float:
    try:
        return metric(
            stack,
            stack.settings.metrics_http_port,
            f'tagllm_images_total{{strategy="{strategy}",vocabulary="voc"}}',
        )
    except OSError:
        return -1.0


def test_committed_local_config_is_what_the_stack_writes():
    from tagllm.stack.prometheus import ScrapeTargets, local_config

    committed = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert committed == local_config(ScrapeTargets(), ["rules/tagllm.rules.yml", "rules/tagllm.alerts.yml"])


def _kubernetes_pod(address: str, component: str, ready: bool, name: str = "tagllm", port: str = "metrics"):
    """A static target carrying the labels Kubernetes pod discovery gives one pod's port."""
    return {
        "targets": [address],
        "labels": {
            "__meta_kubernetes_namespace": "tagllm",
            "__meta_kubernetes_pod_name": f"tagllm-{component}-{port}",
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": name,
            "__meta_kubernetes_pod_label_app_kubernetes_io_component": component,
            "__meta_kubernetes_pod_container_port_name": port,
            "__meta_kubernetes_pod_ready": "true" if ready else "false",
            "__meta_kubernetes_pod_phase": "Running",
        },
    }


def test_the_kubernetes_scrape_config_labels_series_by_pod_and_readiness(observed, tmp_path):
    """prometheus-kubernetes.yml's relabelling, on a real Prometheus scraping the real stack: the
    Kubernetes discovery is replaced by static targets with the labels it would attach."""
    from tagllm.stack.prometheus import prometheus_ready, prometheus_with_config

    s = observed.settings
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    del job["kubernetes_sd_configs"]
    host = s.host
    job["static_configs"] = [
        _kubernetes_pod(f"{host}:{s.gateway_metrics_port}", "gateway", True),
        _kubernetes_pod(f"{host}:{s.refiner_metrics_port}", "refiner", True),
        _kubernetes_pod(f"{host}:{s.metrics_http_port}", "metrics", True),
        _kubernetes_pod(f"{host}:{s.triton_metrics_port}", "model-server", False),  # still loading
        _kubernetes_pod(f"{host}:{s.triton_grpc_port}", "model-server", False, port="grpc"),  # not scraped
        _kubernetes_pod(f"{host}:{s.gateway_port}", "gateway", True, name="someone-else"),  # not ours
    ]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [
        str(ROOT / "deploy" / "prometheus" / "kubernetes-rules" / "tagllm.kubernetes.alerts.yml")
    ]
    port = free_ports()["prometheus_port"]
    server = prometheus_with_config(config, tmp_path / "prometheus", host, port, tmp_path / "prometheus.log")
    server.start()
    try:
        server.wait_until(lambda: prometheus_ready(host, port), 60, "Prometheus")
        kubernetes = type("Stack", (), {"settings": type("S", (), {"host": host, "prometheus_port": port})})

        def targets():
            return {
                (r["metric"]["job"], r["metric"]["pod"], r["metric"]["namespace"], r["metric"]["pod_ready"])
                for r in query(kubernetes, "up == 1")
            }

        wait_until(lambda: len(targets()) == 4, 60, "four scraped pods")
        assert targets() == {
            ("tagllm-gateway", "tagllm-gateway-metrics", "tagllm", "true"),
            ("tagllm-refiner", "tagllm-refiner-metrics", "tagllm", "true"),
            ("tagllm-metrics", "tagllm-metrics-metrics", "tagllm", "true"),
            ("triton", "tagllm-model-server-metrics", "tagllm", "false"),
        }
        # Per-pod series, as prometheus-adapter maps them to pods for the HPAs.
        in_flight = query(kubernetes, 'tagllm_grpc_server_in_flight{job="tagllm-gateway"}')
        assert in_flight and all(r["metric"]["pod"] == "tagllm-gateway-metrics" for r in in_flight)
        # The only model server is not ready: the alert is pending (it fires after 2 minutes).
        wait_until(lambda: query(kubernetes, 'ALERTS{alertname="TagLLMNoModelServerReady"}'), 60, "the alert")
        (alert,) = query(kubernetes, 'ALERTS{alertname="TagLLMNoModelServerReady"}')
        assert alert["metric"]["alertstate"] == "pending"
    finally:
        server.stop()


def test_every_metric_the_deployment_names_is_exported(observed):
    """HPAs, adapter rules, alerts, recording rules and panels name only series the stack exports."""
    from tests.unit.deploy_manifests import referenced_metrics

    stack = observed
    TaggingClient(f"{stack.settings.host}:{stack.settings.gateway_port}").tag(png(), vocabulary="voc")
    exported: set[str] = set()

    def scraped() -> set[str]:
        names = {r["metric"]["__name__"] for r in query(stack, 'count by (__name__) ({__name__=~".+"})')}
        exported.update(names)
        return names

    wait_until(lambda: "tagllm_images_total" in scraped(), 60, "a scrape after tagging")
    # A histogram or counter is referenced by the names its samples carry.
    for consumer, names in referenced_metrics().items():
        missing = {n for n in names if not {n, n + "_total", n + "_bucket", n + "_count"} & exported}
        assert not missing, f"{consumer} names metrics nothing exports: {sorted(missing)}"
