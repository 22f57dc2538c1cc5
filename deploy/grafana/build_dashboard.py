#!/usr/bin/env python3
"""Writes dashboards/tagllm.json: the TagLLM dashboard as code (run after editing PANELS)."""

from __future__ import annotations

import json
from pathlib import Path

# (title, unit, [(expr, legend)], width)
PANELS: list[tuple[str, str, list[tuple[str, str]], int]] = [
    ("Image latency (p50 / p95 / p99)", "s", [
        ("tagllm:image_latency_seconds:p50_5m", "p50 {{strategy}}"),
        ("tagllm:image_latency_seconds:p95_5m", "p95 {{strategy}}"),
        ("tagllm:image_latency_seconds:p99_5m", "p99 {{strategy}}"),
    ], 12),
    ("Stage latency (p50 / p95 / p99)", "s", [
        ("tagllm:stage_latency_seconds:p50_5m", "p50 {{strategy}} {{stage}}"),
        ("tagllm:stage_latency_seconds:p95_5m", "p95 {{strategy}} {{stage}}"),
        ("tagllm:stage_latency_seconds:p99_5m", "p99 {{strategy}} {{stage}}"),
    ], 12),
    ("Throughput", "reqps", [("tagllm:images:rate5m", "{{strategy}} images/s")], 8),
    ("MLLM calls per image", "short", [
        ("tagllm:mllm_calls_per_image:rate5m", "{{strategy}}"),
    ], 8),
    ("Tokens per image", "short", [("tagllm:tokens_per_image:rate5m", "{{strategy}}")], 8),
    ("GPU-seconds per 1,000 images", "s", [("tagllm:gpu_seconds_per_1000_images:rate5m", "{{strategy}}")], 8),
    ("Dollars per 1,000 images vs human", "currencyUSD", [
        ("tagllm:gpu_cost_dollars_per_1000_images:rate5m", "MLLM {{strategy}}"),
        ("tagllm:human_cost_dollars_per_1000_images", "human annotators"),
    ], 8),
    ("Cost ratio to human annotation", "percentunit", [
        ("tagllm:cost_ratio_to_human:rate5m", "{{strategy}}"),
    ], 8),
    ("Agreement with reference labels", "percentunit", [
        ("tagllm:agreement_precision:ratio_rate5m", "precision {{strategy}} {{vocabulary}}"),
        ("tagllm:agreement_recall:ratio_rate5m", "recall {{strategy}} {{vocabulary}}"),
        ("tagllm:agreement_f1:ratio_rate5m", "F1 {{strategy}} {{vocabulary}}"),
    ], 12),
    ("Per-class F1", "percentunit", [("tagllm:class_f1:ratio_rate5m", "{{label}} ({{strategy}})")], 12),
    ("Candidates confirmed in stage 2", "percentunit", [
        ("tagllm:candidate_confirmation:ratio_rate5m", "{{strategy}}"),
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
        ("sum(rate(tagllm_metrics_records_sent_total[5m]))", "sent/s"),
        ("sum(rate(tagllm_metrics_records_dropped_total[5m]))", "dropped/s"),
        ("sum(tagllm_metrics_records_buffered)", "buffered"),
    ], 12),
]  # fmt: skip


def panel(index: int, title: str, unit: str, targets, width: int, x: int, y: int) -> dict:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"uid": "${datasource}"},
            }
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict:
    panels, x, y = [], 0, 0
    for index, (title, unit, targets, width) in enumerate(PANELS):
        if x + width > 24:
            x, y = 0, y + 8
        panels.append(panel(index, title, unit, targets, width, x, y))
        x += width
    return {
        "uid": "tagllm-overview",
        "title": "TagLLM",
        "tags": ["tagllm"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    }


def main() -> None:
    out = Path(__file__).parent / "dashboards" / "tagllm.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
