"""TLS for every hop: server credentials that reload their files (the channels that present a
service's certificate are made by `tagllm.client.channel_credentials` and `open_channel`).

One set of settings per service (`tagllm.settings.common.GrpcSettings`, which checks the files at
start), two identities: its server certificate and key serve its own port; `tls_client_ca_file`,
when set, makes that port require a client certificate signed by that CA (mutual TLS). Toward the
services it calls, `tls_ca_file` verifies them and `tls_client_cert_file` / `_key_file` are the
client certificate it presents. Either side works alone: TLS on the public port with plaintext
behind it, or the reverse. Certificate files are read again when they change on disk, on the next
handshake, so a renewed certificate needs no restart.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import grpc

from services.common.logs import get_logger
from tagllm.client import read_pem

log = get_logger("tls")


class _ReloadingServerCertificate:
    """The certificate configuration, re-read when any of its files changes."""

    def __init__(self, cert: str, key: str, client_ca: str) -> None:
        self.paths = [p for p in (cert, key, client_ca) if p]
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self._lock = threading.Lock()
        self._stamp = self._stamps()

    def _stamps(self) -> tuple:
        return tuple((os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in self.paths)

    def load(self) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(read_pem(self.key), read_pem(self.cert))],
            root_certificates=read_pem(self.client_ca) if self.client_ca else None,
        )

    def fetch(self) -> Any:
        """Called by gRPC before each handshake: a new configuration, or None for no change."""
        try:
            with self._lock:
                stamp = self._stamps()
                if stamp == self._stamp:
                    return None
                config = self.load()
                self._stamp = stamp
            log.info("certificates reloaded", files=self.paths)
            return config
        except (OSError, ValueError) as exc:  # half-written files: keep serving the old ones
            log.warning("certificate reload failed; keeping the previous ones", error=str(exc)[:200])
            return None


def server_credentials(cert: str, key: str, client_ca: str) -> grpc.ServerCredentials | None:
    """TLS credentials for a port, or None for plaintext (no certificate configured)."""
    if not cert:
        return None
    certificate = _ReloadingServerCertificate(cert, key, client_ca)
    return grpc.dynamic_ssl_server_credentials(
        certificate.load(), certificate.fetch, require_client_authentication=bool(client_ca)
    )
