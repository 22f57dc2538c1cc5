"""TLS settings: two identities per service, each side usable alone, and a bad file is one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tagllm.settings import GatewaySettings, SettingsError, load_settings
from tagllm.stack.certs import create_pki

PREFIX = "TAGLLM_GATEWAY_"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return create_pki(tmp_path_factory.mktemp("pki"))


def _load(**variables: str) -> GatewaySettings:
    return load_settings(GatewaySettings, environ={PREFIX + k: v for k, v in variables.items()})


def test_a_server_certificate_alone_serves_tls_and_calls_in_plaintext(pki):
    settings = _load(TLS_CERT_FILE=str(pki["gateway"].cert), TLS_KEY_FILE=str(pki["gateway"].key))
    assert settings.tls_cert_file and not settings.tls_ca_file and not settings.tls_client_cert_file


def test_the_client_identity_is_its_own_setting(pki):
    settings = _load(
        TLS_CA_FILE=str(pki.ca),
        TLS_CLIENT_CERT_FILE=str(pki["client"].cert),
        TLS_CLIENT_KEY_FILE=str(pki["client"].key),
    )
    assert not settings.tls_cert_file and settings.tls_client_cert_file == str(pki["client"].cert)


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"TLS_CERT_FILE": "gateway"}, "TAGLLM_GATEWAY_TLS_CERT_FILE and TAGLLM_GATEWAY_TLS_KEY_FILE"),
        ({"TLS_CERT_FILE": "missing", "TLS_KEY_FILE": "gateway-key"}, "cannot read"),
        ({"TLS_CERT_FILE": "gateway", "TLS_KEY_FILE": "refiner-key"}, "not a PEM certificate and its key"),
        ({"TLS_CLIENT_CERT_FILE": "client", "TLS_CLIENT_KEY_FILE": "client-key"},  # no CA
         "needs TAGLLM_GATEWAY_TLS_CA_"),
        ({"TLS_CA_FILE": "gateway-key"}, "not a PEM CA bundle"),
    ],
)  # fmt: skip
def test_bad_tls_settings_name_the_problem(pki, tmp_path, variables, message):
    files = {"client": pki["client"].cert, "client-key": pki["client"].key, "gateway": pki["gateway"].cert,
             "gateway-key": pki["gateway"].key, "refiner-key": pki["refiner"].key,
             "missing": tmp_path / "missing.pem"}  # fmt: skip
    with pytest.raises(SettingsError, match=message):
        _load(**{k: str(files[v]) for k, v in variables.items()})


@pytest.mark.parametrize("problem", ["missing", "mismatched"])
def test_a_service_with_a_bad_certificate_file_says_so_in_one_line(pki, tmp_path, problem):
    key = tmp_path / "missing.pem" if problem == "missing" else pki["refiner"].key
    environment = {**os.environ, "TAGLLM_GATEWAY_TLS_CERT_FILE": str(pki["gateway"].cert),
                   "TAGLLM_GATEWAY_TLS_KEY_FILE": str(key)}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "services.gateway.server"], env=environment, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("gateway: ") and str(key) in line
