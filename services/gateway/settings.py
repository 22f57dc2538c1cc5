"""The gateway's settings (TAGLLM_GATEWAY_* variables), checked when read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from services.common.settings import GrpcSettings
from tagllm.imaging import DEFAULT_LIMITS


@dataclasses.dataclass(frozen=True)
class GatewaySettings(GrpcSettings):
    port: int = 50051
    refiner_address: str = "127.0.0.1:50052"
    # Least time between two lookups of a dns: REFINER_ADDRESS (gRPC looks again when a
    # connection ends, e.g. at the refiners' MAX_CONNECTION_AGE_SECONDS).
    refiner_resolve_seconds: float = 30.0
    max_image_bytes: int = DEFAULT_LIMITS.max_bytes
    max_image_pixels: int = DEFAULT_LIMITS.max_pixels
    model_pixels: int = DEFAULT_LIMITS.model_pixels
    # Scans of one JPEG: each progressive scan is another decoding pass over every pixel.
    max_jpeg_scans: int = DEFAULT_LIMITS.max_jpeg_scans
    max_batch_images: int = 64
    # Images being tagged at once across all RPCs; more get RESOURCE_EXHAUSTED.
    max_in_flight: int = 64
    # Images of one StreamTag call held at once: being tagged, or answered and not yet read.
    stream_window: int = 8
    # StreamTag calls one caller may have open at once.
    max_streams_per_caller: int = 32
    # Decoded pixels in flight (images being shrunk or turned), in all, per caller, per request.
    max_pixels_in_flight: int = 128_000_000
    max_caller_pixels_in_flight: int = 96_000_000
    max_request_pixels_in_flight: int = 64_000_000
    # A StreamTag that sends no message for this long is ended.
    stream_idle_seconds: float = 30.0
    # Per caller (API key; everyone together without keys); 0 turns a quota off.
    quota_requests_per_second: float = 0.0
    quota_images_per_second: float = 0.0
    cache_entries: int = 10_000
    # Where registered vocabularies are kept: a directory every replica shares (a volume), so one
    # registered through any replica is known to all and kept across restarts; empty: in memory.
    vocabulary_dir: str = ""
    # Used when the client sets no deadline.
    default_timeout_seconds: float = 300.0
    # Comma-separated keys; empty disables authentication unless require_api_keys is set.
    api_keys: tuple[str, ...] = ()
    # A file of keys (comma- or line-separated), e.g. a mounted Secret; read at start, added to
    # API_KEYS. Keeps keys out of the environment, which crash reports and /proc show.
    api_keys_file: str = ""
    # Refuse to start without keys (fail closed, e.g. when a Secret failed to mount).
    require_api_keys: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.api_keys_file:
            try:
                text = Path(self.api_keys_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(
                    f"TAGLLM_GATEWAY_API_KEYS_FILE: cannot read {self.api_keys_file}: {exc}"
                ) from None
            from_file = tuple(k.strip() for k in text.replace("\n", ",").split(",") if k.strip())
            object.__setattr__(self, "api_keys", (*self.api_keys, *from_file))
        if self.require_api_keys and not self.api_keys:
            raise ValueError(
                "TAGLLM_GATEWAY_REQUIRE_API_KEYS is set but TAGLLM_GATEWAY_API_KEYS(_FILE) holds no key"
            )
        for name in (
            "max_batch_images",
            "max_in_flight",
            "stream_window",
            "max_image_bytes",
            "max_image_pixels",
            "max_jpeg_scans",
            "max_streams_per_caller",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TAGLLM_GATEWAY_{name.upper()} must be at least 1")
        for name in ("max_pixels_in_flight", "max_caller_pixels_in_flight", "max_request_pixels_in_flight"):
            if getattr(self, name) < self.max_image_pixels:
                raise ValueError(
                    f"TAGLLM_GATEWAY_{name.upper()} must be at least TAGLLM_GATEWAY_MAX_IMAGE_PIXELS, "
                    "so that one image of the largest size is always decoded"
                )
        if (
            self.stream_idle_seconds <= 0
            or self.quota_requests_per_second < 0
            or self.quota_images_per_second < 0
        ):
            raise ValueError("TAGLLM_GATEWAY_STREAM_IDLE_SECONDS must be positive and quotas not negative")
