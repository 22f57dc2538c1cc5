"""What every gRPC service shares: its listener, limits, logs, drain and TLS files."""

from __future__ import annotations

import ssl
from typing import Annotated, Literal

from pydantic import Field, model_validator

from tagllm.client import read_pem
from tagllm.settings.base import ServiceSettings

Port = Annotated[int, Field(ge=0, le=65535)]


class GrpcSettings(ServiceSettings):
    host: str = Field("127.0.0.1", description="address the gRPC port listens on (0.0.0.0: every interface)")
    port: Port = Field(0, description="gRPC port (0: any free one)")
    workers: int = Field(
        16,
        ge=1,
        description="threads for blocking work (image decoding in the gateway, strategies in the refiner)",
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="largest gRPC message received or sent"
    )
    drain_seconds: float = Field(10.0, ge=0, description="grace for in-flight RPCs after SIGTERM")
    log_format: Literal["json", "console"] = Field("json", description="`json` lines or `console` key=value")
    metrics_port: Port = Field(
        0, description="port of the service's own /metrics (gRPC server metrics); 0: off"
    )
    max_concurrent_rpcs: int = Field(
        1000,
        ge=1,
        description="RPCs open at once, streams included, health and reflection not; more get "
        "`RESOURCE_EXHAUSTED`",
    )
    max_streams_per_connection: int = Field(
        100,
        ge=1,
        description="HTTP/2 streams one connection may have open at once (a client's further calls wait "
        "on its side, so one connection cannot take every RPC slot)",
    )
    max_connection_age_seconds: float = Field(
        0.0,
        ge=0,
        description="connections older than this are closed (GOAWAY; in-flight calls get the drain time), so "
        "clients resolve the service's name again and reach replicas added since; 0: never",
    )
    readiness_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="longest wait for a dependency's health (the refiner for the gateway, Triton for the "
        "refiner); a hung one reads as not ready",
    )
    tls_cert_file: str = Field(
        "",
        description="server certificate chain (PEM) of the service's port, with `TLS_KEY_FILE`; empty: "
        "plaintext. Alone it turns on nothing else",
    )
    tls_key_file: str = Field("", description="private key (PEM) of `TLS_CERT_FILE`")
    tls_client_ca_file: str = Field(
        "",
        description="callers must present a certificate signed by this CA bundle (mutual TLS); set it on the "
        "refiner and the metrics service",
    )
    tls_ca_file: str = Field(
        "",
        description="CA bundle that verifies the services this one calls (gateway: the refiner; refiner: "
        "Triton and the metrics service); empty: call them in plaintext",
    )
    tls_client_cert_file: str = Field(
        "",
        description="client certificate (PEM) presented to the services this one calls (their mutual TLS), "
        "an identity apart from the port's; needs `TLS_CA_FILE`",
    )
    tls_client_key_file: str = Field("", description="private key (PEM) of `TLS_CLIENT_CERT_FILE`")

    @model_validator(mode="after")
    def _tls_files_usable(self) -> GrpcSettings:
        check_tls_files(
            self.tls_cert_file,
            self.tls_key_file,
            self.tls_client_ca_file,
            self.tls_ca_file,
            self.tls_client_cert_file,
            self.tls_client_key_file,
        )
        return self


def _check_pair(cert: str, key: str) -> None:
    try:
        # No passphrase (gRPC takes none): an encrypted key fails here instead of prompting.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise ValueError(f"{cert} and {key} are not a PEM certificate and its key ({reason})") from None


def _check_ca(ca: str) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ValueError(f"{ca} is not a PEM CA bundle ({exc.reason or exc})") from None


def check_tls_files(
    cert: str, key: str, client_ca: str, ca: str = "", client_cert: str = "", client_key: str = ""
) -> None:
    """Refuses incomplete or unusable TLS settings with one line that names what is wrong."""
    if bool(cert) != bool(key):
        raise ValueError("..._TLS_CERT_FILE and ..._TLS_KEY_FILE go together")
    if client_ca and not cert:
        raise ValueError("..._TLS_CLIENT_CA_FILE needs ..._TLS_CERT_FILE: mutual TLS is TLS first")
    if bool(client_cert) != bool(client_key):
        raise ValueError("..._TLS_CLIENT_CERT_FILE and ..._TLS_CLIENT_KEY_FILE go together")
    if client_cert and not ca:
        raise ValueError("..._TLS_CLIENT_CERT_FILE needs ..._TLS_CA_FILE, the CA of the services called")
    for path in (cert, key, client_ca, ca, client_cert, client_key):
        if path:
            read_pem(path)
    for pair in ((cert, key), (client_cert, client_key)):
        if pair[0]:
            _check_pair(*pair)
    for bundle in (client_ca, ca):
        if bundle:
            _check_ca(bundle)
