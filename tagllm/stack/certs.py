"""A private certificate authority for the local stack's TLS (`tagllm up --tls`) and for tests.

Each service gets a certificate for the loopback names that serves its port and, with the client
usage too, identifies it to the services it calls. In production the certificates come from the
cluster's issuer instead (for example cert-manager); the services only read the files.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

SERVICES = ("gateway", "refiner", "metrics", "triton", "client")


@dataclasses.dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path


@dataclasses.dataclass(frozen=True)
class LocalPKI:
    ca: Path
    identities: dict[str, CertificateFiles]

    def __getitem__(self, name: str) -> CertificateFiles:
        return self.identities[name]


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def create_pki(
    directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 30
) -> LocalPKI:
    """Writes ca.pem and NAME.pem / NAME-key.pem for every service into `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TagLLM local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    identities = {}
    for service in SERVICES:
        key = _key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tagllm-{service}")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        files = CertificateFiles(directory / f"{service}.pem", directory / f"{service}-key.pem")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, files.key)
        identities[service] = files
    return LocalPKI(ca_path, identities)
