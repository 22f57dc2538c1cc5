"""Prometheus metrics of tagging: latency, usage, cost, agreement with references."""

from tagllm.metrics.tagging import ImageRecord, TaggingMetrics

__all__ = ["ImageRecord", "TaggingMetrics"]
