"""TLS for every hop: server credentials that reload their files (the channels that present a
service's certificate are made by `tagllm.client.channel_credentials` and `open_channel`).

One set of settings per service (see `GrpcSettings`), two identities: its server certificate and
key serve its own port; `tls_client_ca_file`, when set, makes that port require a client
certificate signed by that CA (mutual TLS). Toward the services it calls, `tls_ca_file` verifies
them and `tls_client_cert_file` / `_key_file` are the client certificate it presents. Either side
works alone: TLS on the public port with plaintext behind it, or the reverse. Certificate files
are read again when they change on disk, on the next handshake, so a renewed certificate needs
no restart.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import grpc

from services.common.logs import get_logger
from tagllm.client import read_pem

log = get_logger("tls")


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


def check_tls_settings(
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
