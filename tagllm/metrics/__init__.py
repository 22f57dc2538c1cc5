"""Prometheus metrics of tagging: latency, usage, cost, agreement with references."""

from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR, DEFAULT_HUMAN_COST_PER_IMAGE, gpu_dollars
from tagllm.metrics.tagging import TaggedImage, TaggingMetrics

__all__ = [
    "DEFAULT_GPU_PRICE_PER_HOUR",
    "DEFAULT_HUMAN_COST_PER_IMAGE",
    "TaggedImage",
    "TaggingMetrics",
    "gpu_dollars",
]
