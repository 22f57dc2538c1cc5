#!/usr/bin/env python3
"""Writes dashboards/tagllm.json, the TagLLM dashboard, with Grafana's own dashboards-as-code
SDK (grafana-foundation-sdk), so the schema is Grafana's. Run it after editing the panels.

The first row answers an operator's four questions at a glance: is it healthy, is it fast,
what does it cost against human annotators, does it agree with the reference labels. Every
query reads a recording rule (deploy/prometheus/rules) and is filtered by the dashboard's
variables: datasource, strategy, vocabulary, instance.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Label filters of the dashboard's variables.
S = 'strategy=~"$strategy"'
SV = 'strategy=~"$strategy",vocabulary=~"$vocabulary"'
INSTANCE = 'instance=~"$instance"'

# title, unit, [(expr, legend)], description
GLANCE = [
    (
        "Healthy? targets up",
        "percentunit",
        [("min(tagllm:targets_up:ratio)", "all jobs")],
        "Share of scrape targets of the least healthy job that answer; below 100% a service is down.",
    ),
    (
        "Fast? image latency p95",
        "s",
        [(f"max(tagllm:image_latency_seconds:p95_5m{{{S}}})", "p95")],
        "Slowest strategy's 95th percentile of the time the refiner spends on one image.",
    ),
    (
        "Cost vs humans",
        "percentunit",
        [(f"max(tagllm:cost_ratio_to_human:rate5m{{{S}}})", "of human cost")],
        "Model cost per image as a share of the configured human cost per image.",
    ),
    (
        "Agreement F1",
        "percentunit",
        [(f"min(tagllm:agreement_f1:ratio_rate5m{{{SV}}})", "F1")],
        "Lowest F1 against the reference labels sent with requests, over the selected strategies.",
    ),
]
TIMESERIES = [
    ("Image latency (p50 / p95 / p99)", "s", [
        (f"tagllm:image_latency_seconds:p50_5m{{{S}}}", "p50 {{strategy}}"),
        (f"tagllm:image_latency_seconds:p95_5m{{{S}}}", "p95 {{strategy}}"),
        (f"tagllm:image_latency_seconds:p99_5m{{{S}}}", "p99 {{strategy}}"),
    ], 12),
    ("Stage latency (p50 / p95 / p99)", "s", [
        (f"tagllm:stage_latency_seconds:p50_5m{{{S}}}", "p50 {{strategy}} {{stage}}"),
        (f"tagllm:stage_latency_seconds:p95_5m{{{S}}}", "p95 {{strategy}} {{stage}}"),
        (f"tagllm:stage_latency_seconds:p99_5m{{{S}}}", "p99 {{strategy}} {{stage}}"),
    ], 12),
    ("Throughput", "reqps", [(f"tagllm:images:rate5m{{{SV}}}", "{{strategy}} {{vocabulary}} images/s")], 8),
    ("MLLM calls per image", "short", [(f"tagllm:mllm_calls_per_image:rate5m{{{S}}}", "{{strategy}}")], 8),
    ("Tokens per image", "short", [(f"tagllm:tokens_per_image:rate5m{{{S}}}", "{{strategy}}")], 8),
    ("GPU-seconds per 1,000 images", "s", [
        (f"tagllm:gpu_seconds_per_1000_images:rate5m{{{S}}}", "{{strategy}}"),
    ], 8),
    ("Dollars per 1,000 images vs human", "currencyUSD", [
        (f"tagllm:gpu_cost_dollars_per_1000_images:rate5m{{{S}}}", "MLLM {{strategy}}"),
        ("tagllm:human_cost_dollars_per_1000_images", "human annotators"),
    ], 8),
    ("Cost ratio to human annotation", "percentunit", [
        (f"tagllm:cost_ratio_to_human:rate5m{{{S}}}", "{{strategy}}"),
    ], 8),
    ("Agreement with reference labels", "percentunit", [
        (f"tagllm:agreement_precision:ratio_rate5m{{{SV}}}", "precision {{strategy}} {{vocabulary}}"),
        (f"tagllm:agreement_recall:ratio_rate5m{{{SV}}}", "recall {{strategy}} {{vocabulary}}"),
        (f"tagllm:agreement_f1:ratio_rate5m{{{SV}}}", "F1 {{strategy}} {{vocabulary}}"),
    ], 12),
    ("Per-class F1", "percentunit", [
        (f"tagllm:class_f1:ratio_rate5m{{{SV}}}", "{{label}} ({{strategy}})"),
    ], 12),
    ("Candidates confirmed in stage 2", "percentunit", [
        (f"tagllm:candidate_confirmation:ratio_rate5m{{{S}}}", "{{strategy}}"),
    ], 8),
    ("Triton queue and compute time per request", "s", [
        ("tagllm:triton_queue_seconds_per_request:rate5m", "queue {{model}}"),
        ("tagllm:triton_compute_seconds_per_request:rate5m", "compute {{model}}"),
    ], 8),
    ("gRPC requests and server errors", "reqps", [
        ("tagllm:grpc_server_requests:rate5m", "{{grpc_service}}/{{grpc_method}}"),
        ("tagllm:grpc_server_error_ratio:rate5m", "error ratio {{grpc_service}}"),
    ], 8),
    ("Metrics records sent / dropped / buffered", "short", [
        (f"tagllm:metrics_records_sent:rate5m{{{INSTANCE}}}", "sent/s {{instance}}"),
        (f"tagllm:metrics_records_dropped:rate5m{{{INSTANCE}}}", "dropped/s {{instance}}"),
        (f"tagllm:metrics_records_buffered{{{INSTANCE}}}", "buffered {{instance}}"),
    ], 12),
    ("Scrape targets up", "percentunit", [("tagllm:targets_up:ratio", "{{job}}")], 12),
]  # fmt: skip


def _queries(targets):
    return [
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(chr(ord("A") + n))
        .datasource(DATASOURCE)
        for n, (expr, legend) in enumerate(targets)
    ]


def _variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(DATASOURCE)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )


def build() -> dict:
    board = (
        dashboard.Dashboard("TagLLM")
        .uid("tagllm-overview")
        .tags(["tagllm"])
        .timezone("utc")
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(_variable("strategy", "Strategy", "label_values(tagllm_images_total, strategy)"))
        .with_variable(_variable("vocabulary", "Vocabulary", "label_values(tagllm_images_total, vocabulary)"))
        .with_variable(
            _variable("instance", "Instance", 'label_values(up{job=~"tagllm-.*|triton"}, instance)')
        )
        .with_row(dashboard.Row("At a glance: healthy? fast? cost vs humans? agreement?"))
    )
    for title, unit, targets, description in GLANCE:
        panel = (
            stat.Panel()
            .title(title)
            .description(description)
            .unit(unit)
            .height(5)
            .span(6)
            .datasource(DATASOURCE)
            .graph_mode(BigValueGraphMode.AREA)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        )
        for query in _queries(targets):
            panel = panel.with_target(query)
        board = board.with_panel(panel)
    board = board.with_row(dashboard.Row("Details"))
    for title, unit, targets, width in TIMESERIES:
        panel = timeseries.Panel().title(title).unit(unit).height(8).span(width).datasource(DATASOURCE)
        for query in _queries(targets):
            panel = panel.with_target(query)
        board = board.with_panel(panel)
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))


def main() -> None:
    out = Path(__file__).parent / "dashboards" / "tagllm.json"
    out.write_text(json.dumps(build(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
