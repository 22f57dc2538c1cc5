"""The metrics service's settings (TAGLLM_METRICS_* variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tagllm import ports
from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR, DEFAULT_HUMAN_COST_PER_IMAGE
from tagllm.settings.common import GrpcSettings, Port


class MetricsSettings(GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="TAGLLM_METRICS_")

    port: Port = Field(ports.METRICS, description="gRPC port (`tagllm.internal.v1.MetricsService`)")
    metrics_port: Port = Field(
        ports.METRICS_HTTP,
        description="the tagging metrics' /metrics (with the gRPC server's own)",
    )
    gpu_price_per_hour: float = Field(
        DEFAULT_GPU_PRICE_PER_HOUR, ge=0, description="dollars per GPU-hour, applied to model compute seconds"
    )
    human_cost_per_image: float = Field(
        DEFAULT_HUMAN_COST_PER_IMAGE,
        ge=0,
        description="dollars per human-annotated image, for the cost ratio",
    )
    max_class_labels: int = Field(
        100, ge=0, description="per-class agreement series only for vocabularies up to this many categories"
    )
    max_vocabularies: int = Field(
        64,
        ge=1,
        description="vocabularies with series; records naming more are refused (counted in "
        "`tagllm_metrics_records_invalid_total`)",
    )
