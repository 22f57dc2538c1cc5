"""Settings from environment variables, one frozen dataclass per service.

A field `foo_bar` of a service with prefix `TAGLLM_GATEWAY_` reads `TAGLLM_GATEWAY_FOO_BAR`.
Settings are read once at start-up and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import TypeVar

from services.common.tls import check_tls_settings

T = TypeVar("T", bound="GrpcSettings")


class SettingsError(ValueError):
    pass


def _convert(raw: str, kind, name: str):
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a {kind.__name__}, got {raw!r}") from None
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def load_settings(
    cls: type[T], prefix: str, environ: typing.Mapping[str, str] | None = None, **overrides
) -> T:
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        name = prefix + field.name.upper()
        if field.name in overrides:
            values[field.name] = overrides[field.name]
        elif name in environ:
            kind = hints[field.name]
            if isinstance(kind, types.UnionType):  # "X | None": take X
                kind = next(a for a in typing.get_args(kind) if a is not type(None))
            values[field.name] = _convert(environ[name], kind, name)
    try:
        return cls(**values)
    except ValueError as exc:  # checks that name a variable as "..._NAME" get the prefix
        raise SettingsError(str(exc).replace("..._", prefix)) from None


@dataclasses.dataclass(frozen=True)
class GrpcSettings:
    """What every gRPC service shares."""

    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 16
    max_message_bytes: int = 64 * 1024 * 1024
    # Seconds in-flight RPCs get to finish after SIGTERM.
    drain_seconds: float = 10.0
    log_format: str = "json"  # json | console
    # Port of this service's own /metrics (gRPC server metrics); 0 turns it off.
    metrics_port: int = 0
    # RPCs open at once (streams included, health and reflection not); more: RESOURCE_EXHAUSTED.
    max_concurrent_rpcs: int = 1000
    # HTTP/2 streams one connection may have open at once (its further streams wait client-side).
    max_streams_per_connection: int = 100
    # Connections older than this are closed (GOAWAY, in-flight calls get DRAIN_SECONDS), so that
    # clients resolve the service's name again and find replicas added since; 0: never.
    max_connection_age_seconds: float = 0.0
    # Longest wait for the readiness probe (a dependency's health); a hung one reads as not ready.
    readiness_timeout_seconds: float = 2.0
    # TLS: this service's server certificate chain and key (PEM), for its port. Empty: plaintext.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # When set, callers must present a certificate signed by this CA bundle (mutual TLS).
    tls_client_ca_file: str = ""
    # CA bundle that verifies the services this one calls; empty: call them in plaintext.
    tls_ca_file: str = ""
    # The client certificate and key this service presents to the services it calls (their
    # mutual TLS); an identity of its own, apart from the server certificate of its port.
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""

    def __post_init__(self) -> None:
        check_tls_settings(
            self.tls_cert_file,
            self.tls_key_file,
            self.tls_client_ca_file,
            self.tls_ca_file,
            self.tls_client_cert_file,
            self.tls_client_key_file,
        )
        if self.max_connection_age_seconds < 0:
            raise ValueError("..._MAX_CONNECTION_AGE_SECONDS must not be negative")
        if self.workers < 1 or self.max_concurrent_rpcs < 1 or self.max_streams_per_connection < 1:
            raise ValueError(
                "..._WORKERS, ..._MAX_CONCURRENT_RPCS and ..._MAX_STREAMS_PER_CONNECTION must be at least 1"
            )
