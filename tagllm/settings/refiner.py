"""The refiner's settings (TAGLLM_REFINER_* variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tagllm import ports
from tagllm.imaging import DEFAULT_LIMITS
from tagllm.settings.common import GrpcSettings, Port


class RefinerSettings(GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="TAGLLM_REFINER_")

    port: Port = Field(ports.REFINER, description="gRPC port (`tagllm.internal.v1.RefinementService`)")
    triton_url: str = Field(
        ports.loopback(ports.TRITON_GRPC),
        description="the Triton replicas: `host:port,...`, or every address of a DNS name "
        "(`dns:///name:port`, a headless Service, or `dns://SERVER/name:port`); each image sticks to one "
        "live replica (its prefix cache) and fails over to its next",
    )
    triton_refresh_seconds: float = Field(
        5.0, gt=0, description="how often a DNS name of `TRITON_URL` is looked up again"
    )
    triton_timeout_seconds: float = Field(
        300.0, gt=0, description="cap on one model-server call; a shorter client deadline wins"
    )
    triton_affinity_slack: int = Field(
        4,
        ge=0,
        description="an image leaves its replica for its next one while that replica has more of this "
        "refiner's calls in flight than twice the least-loaded one's plus this",
    )
    overload_retry_seconds: float = Field(
        1.0,
        gt=0,
        description="what a caller is told to wait (`RetryInfo`) when every model server's queue is full",
    )
    metrics_address: str = Field(
        ports.loopback(ports.METRICS),
        description="the metrics service, where a record of each tagged image goes; empty: nowhere",
    )
    metrics_buffer: int = Field(
        10_000, ge=1, description="records kept while the metrics service is unreachable (then the oldest go)"
    )
    max_image_bytes: int = Field(
        DEFAULT_LIMITS.max_bytes,
        ge=1,
        description="the gateway's limit again: images arrive normalised, so larger ones are refused here "
        "too (`INVALID_ARGUMENT`), whoever calls",
    )
    model_pixels: int = Field(
        DEFAULT_LIMITS.model_pixels, ge=1, description="likewise, the gateway's `MODEL_PIXELS`"
    )
