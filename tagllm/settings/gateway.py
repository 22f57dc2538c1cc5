"""The gateway's settings (TAGLLM_GATEWAY_* variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from tagllm import ports
from tagllm.imaging import DEFAULT_LIMITS
from tagllm.settings.common import GrpcSettings, Port

PIXEL_BUDGETS = ("max_pixels_in_flight", "max_caller_pixels_in_flight", "max_request_pixels_in_flight")


class GatewaySettings(GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="TAGLLM_GATEWAY_")

    port: Port = Field(ports.GATEWAY, description="the public gRPC port (`tagllm.v1.TaggingService`)")
    refiner_address: str = Field(
        ports.loopback(ports.REFINER),
        description="the refiners: `host:port`, or every address of a DNS name (`dns:///name:port`, a "
        "headless Service), RPCs spread over them",
    )
    refiner_resolve_seconds: float = Field(
        30.0,
        gt=0,
        description="least time between two lookups of a `dns:` refiner address (gRPC looks again when a "
        "connection ends, e.g. at the refiners' `MAX_CONNECTION_AGE_SECONDS`)",
    )
    max_image_bytes: int = Field(DEFAULT_LIMITS.max_bytes, ge=1, description="encoded image size limit")
    max_image_pixels: int = Field(
        DEFAULT_LIMITS.max_pixels, ge=1, description="decoded size limit (read from the header)"
    )
    model_pixels: int = Field(
        DEFAULT_LIMITS.model_pixels, ge=1, description="larger images are shrunk to this budget"
    )
    max_jpeg_scans: int = Field(
        DEFAULT_LIMITS.max_jpeg_scans,
        ge=1,
        description="scans of one JPEG (each progressive scan is another decoding pass over every pixel; an "
        "encoder writes 1 to about 10); more: `INVALID_ARGUMENT` before decoding",
    )
    max_batch_images: int = Field(64, ge=1, description="images per `BatchTag`")
    max_in_flight: int = Field(
        64, ge=1, description="images being tagged at once across all RPCs; more get `RESOURCE_EXHAUSTED`"
    )
    stream_window: int = Field(
        8,
        ge=1,
        description="images of one `StreamTag` held at once: being tagged, or answered and not yet read by "
        "the client",
    )
    max_streams_per_caller: int = Field(
        32,
        ge=1,
        description="`StreamTag` calls one caller (API key; all callers together without keys) may have open",
    )
    max_pixels_in_flight: int = Field(
        128_000_000,
        ge=1,
        description="decoded pixels of images being shrunk or turned, in the whole gateway; at least "
        "`MAX_IMAGE_PIXELS`; beyond: `RESOURCE_EXHAUSTED`",
    )
    max_caller_pixels_in_flight: int = Field(
        96_000_000, ge=1, description="the same, per caller; at least `MAX_IMAGE_PIXELS`"
    )
    max_request_pixels_in_flight: int = Field(
        64_000_000, ge=1, description="the same, per RPC; at least `MAX_IMAGE_PIXELS`"
    )
    stream_idle_seconds: float = Field(
        30.0, gt=0, description="a `StreamTag` that sends no message for this long is ended"
    )
    quota_requests_per_second: float = Field(
        0.0,
        ge=0,
        description="requests per second per API key (all callers together without keys) and per gateway "
        "replica (with N replicas a key gets up to N times its quota); a burst of two seconds' worth; "
        "beyond: `RESOURCE_EXHAUSTED` with `RetryInfo`; 0: off",
    )
    quota_images_per_second: float = Field(
        0.0, ge=0, description="images per second, counted as `QUOTA_REQUESTS_PER_SECOND`; 0: off"
    )
    cache_entries: int = Field(10_000, ge=0, description="result cache size (0: no cache)")
    vocabulary_dir: str = Field(
        "",
        description="where registered vocabularies are kept: a directory every replica shares (a volume), so "
        "one registered through any replica is known to all and kept across restarts; empty: in memory",
    )
    default_timeout_seconds: float = Field(300.0, gt=0, description="deadline when the client sets none")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="comma-separated keys; when any is set, `authorization: Bearer KEY` is required "
        "(compared in constant time)",
    )
    api_keys_file: Path | None = Field(
        None,
        description="a file of keys (comma- or line-separated), such as a mounted Secret, read at start and "
        "added to `API_KEYS`; keeps keys out of the environment, which crash reports and /proc show",
    )
    require_api_keys: bool = Field(
        False, description="refuse to start without keys (fail closed, e.g. when a Secret failed to mount)"
    )
    _keys_from_file: tuple[str, ...] = PrivateAttr(())

    @field_validator("api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_keys(value) if isinstance(value, str) else value

    @field_validator("require_api_keys", mode="before")
    @classmethod
    def _empty_is_false(cls, value: object) -> object:
        return False if value == "" else value

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        if self.api_keys_file is not None:
            try:
                text = self.api_keys_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(
                    f"{self.env_name('api_keys_file')}: cannot read {self.api_keys_file}: {exc}"
                ) from None
            self._keys_from_file = _split_keys(text)
            object.__setattr__(self, "api_keys", (*self.api_keys, *self._keys_from_file))
        if self.require_api_keys and not self.api_keys:
            raise ValueError(
                f"{self.env_name('require_api_keys')} is set but "
                f"{self.env_name('api_keys')}(_FILE) holds no key"
            )
        for name in PIXEL_BUDGETS:
            if getattr(self, name) < self.max_image_pixels:
                raise ValueError(
                    f"{self.env_name(name)} must be at least {self.env_name('max_image_pixels')}, "
                    "so that one image of the largest size is always decoded"
                )
        return self

    def to_env(self) -> dict[str, str]:
        env = super().to_env()
        if self._keys_from_file:  # the file's keys stay in the file
            given = tuple(k for k in self.api_keys if k not in self._keys_from_file)
            env.pop(self.env_name("api_keys"), None)
            if given:
                env[self.env_name("api_keys")] = ",".join(given)
        return env


def _split_keys(text: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in text.replace("\n", ",").split(",") if key.strip())
