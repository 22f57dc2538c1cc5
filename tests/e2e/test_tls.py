"""TLS on the gateway and mutual TLS on every internal hop, through the real stack (`tagllm up --tls`)."""

import os
import shutil
import subprocess
import sys

import grpc
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from tagllm.client import TaggingClient, channel_credentials, strategy_options
from tagllm.mllm.tensors import MODEL_NAME
from tagllm.stack.certs import create_pki
from tagllm.stack.local import LocalStack, StackSettings, grpc_serving
from tagllm.stack.ports import free_port
from tagllm.stack.processes import ManagedProcess
from tests.conftest import SERVING, free_ports, health_status, png, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_stack(qwen_dir, tmp_path_factory):
    settings = StackSettings(
        model_dir=qwen_dir, run_dir=tmp_path_factory.mktemp("tls-stack"), **free_ports(), tls=True
    )
    with LocalStack(settings) as running:
        yield running


def _refused(address: str, credentials=None) -> bool:
    try:
        health_status(address, "", credentials)
    except grpc.RpcError as exc:
        return exc.code() == grpc.StatusCode.UNAVAILABLE
    return False


def test_a_client_with_the_ca_tags_and_a_plaintext_client_is_refused(tls_stack):
    pki = tls_stack.pki
    with TaggingClient(
        tls_stack.settings.gateway_address, credentials=channel_credentials(str(pki.ca))
    ) as client:
        response = client.tag(png(), options=strategy_options("tagllm"), timeout=120)
    assert response.result.usage.mllm_calls >= 1  # through gateway, refiner and Triton, all over TLS
    assert _refused(tls_stack.settings.gateway_address)  # plaintext


def test_a_client_that_trusts_another_ca_is_refused(tls_stack, tmp_path):
    stranger = create_pki(tmp_path / "other")
    assert _refused(tls_stack.settings.gateway_address, channel_credentials(str(stranger.ca)))


@pytest.mark.parametrize("service", ["refiner", "metrics"])
def test_internal_services_require_a_client_certificate_from_the_ca(tls_stack, service, tmp_path):
    pki, s = tls_stack.pki, tls_stack.settings
    address = s.refiner_address if service == "refiner" else s.metrics_address
    assert _refused(address)  # plaintext
    assert _refused(address, channel_credentials(str(pki.ca)))  # TLS, but no client certificate
    stranger = create_pki(tmp_path / "other")  # a certificate the stack's CA did not sign
    assert _refused(
        address, channel_credentials(str(pki.ca), str(stranger["client"].cert), str(stranger["client"].key))
    )
    identity = pki["gateway"]
    credentials = channel_credentials(str(pki.ca), str(identity.cert), str(identity.key))
    assert health_status(address, "", credentials) == SERVING


def test_triton_requires_a_client_certificate_from_the_ca(tls_stack):
    pki, address = tls_stack.pki, tls_stack.settings.triton_grpc_address

    def ready(credentials) -> bool:
        client = triton_grpc.InferenceServerClient(address, creds=credentials)
        try:
            return client.is_model_ready(MODEL_NAME, client_timeout=5)
        except InferenceServerException:
            return False
        finally:
            client.close()

    assert not ready(channel_credentials(str(pki.ca)))
    assert ready(channel_credentials(str(pki.ca), str(pki["refiner"].cert), str(pki["refiner"].key)))


def test_the_cli_takes_a_ca_and_refuses_half_a_client_identity(tls_stack, tmp_path):
    image = tmp_path / "red.png"
    image.write_bytes(png())
    cli = ["tag", image, "--address", tls_stack.settings.gateway_address]
    run = run_cli(*cli, "--ca", tls_stack.pki.ca, timeout=180)
    assert run.returncode == 0, run.stderr
    assert "MLLM calls" in run.stdout
    half = run_cli(*cli, "--cert", tls_stack.pki["client"].cert, timeout=60)
    assert half.returncode == 2 and "needs the CA" in half.stderr


def test_the_probe_commands_speak_tls_as_kubernetes_exec_probes_run_them(tls_stack):
    # Before the renewal test below, which changes the certificates the stack serves.
    pki, s = tls_stack.pki, tls_stack.settings

    def probe(*argv: str) -> subprocess.CompletedProcess:
        return run_cli(*argv, timeout=60)

    gateway = probe("health", s.gateway_address, "--ca", str(pki.ca), "--server-name", "localhost")
    assert gateway.returncode == 0 and gateway.stdout.strip() == "SERVING", gateway.stderr
    assert probe("health", s.refiner_address, "--ca", str(pki.ca)).returncode == 1  # no client certificate
    identity = ["--cert", str(pki["gateway"].cert), "--key", str(pki["gateway"].key)]
    assert probe("health", s.refiner_address, "--ca", str(pki.ca), *identity).returncode == 0
    assert probe("health", s.gateway_address).returncode == 1  # plaintext to a TLS port
    triton = [
        "model",
        "ready",
        "--address",
        s.triton_grpc_address,
        "--ca",
        str(pki.ca),
        "--server-name",
        "localhost",
    ]
    refiner_identity = ["--cert", str(pki["refiner"].cert), "--key", str(pki["refiner"].key)]
    ready = probe(*triton, *refiner_identity)
    assert ready.returncode == 0 and ready.stdout.strip() == "ready", ready.stderr
    assert probe(*triton).returncode == 1


def test_a_renewed_certificate_is_served_without_a_restart(tls_stack, tmp_path):
    # Last in this module: the gateway keeps the renewed certificate.
    pki, address = tls_stack.pki, tls_stack.settings.gateway_address
    renewed = create_pki(tmp_path / "renewed")
    for source, target in (
        (renewed["gateway"].cert, pki["gateway"].cert),
        (renewed["gateway"].key, pki["gateway"].key),
    ):
        shutil.copy(source, target.with_suffix(".new"))
        os.replace(target.with_suffix(".new"), target)  # as a mounted Secret changes: atomically
    # New connections get the renewed certificate: clients of the new CA pass, of the old one not.
    assert health_status(address, "", channel_credentials(str(renewed.ca))) == SERVING
    assert _refused(address, channel_credentials(str(pki.ca)))
    assert tls_stack.processes["gateway"].running


def test_tls_on_the_public_port_alone_serves_tls_clients_and_refuses_plaintext(stack, tmp_path):
    # The common case: only TAGLLM_GATEWAY_TLS_CERT_FILE and _KEY_FILE, plaintext behind the gateway
    # (here the plaintext stack's refiner).
    pki = create_pki(tmp_path / "pki")
    port = free_port()
    environment = {
        **os.environ,
        "TAGLLM_LOG_FORMAT": "console",
        "TAGLLM_GATEWAY_PORT": str(port),
        "TAGLLM_GATEWAY_REFINER_ADDRESS": stack.settings.refiner_address,
        "TAGLLM_GATEWAY_TLS_CERT_FILE": str(pki["gateway"].cert),
        "TAGLLM_GATEWAY_TLS_KEY_FILE": str(pki["gateway"].key),
    }
    gateway = ManagedProcess(
        "gateway-public-tls", [sys.executable, "-m", "services.gateway.server"], tmp_path / "gateway.log",
        env=environment,
    )  # fmt: skip
    address, credentials = f"127.0.0.1:{port}", channel_credentials(str(pki.ca))
    gateway.start()
    try:
        gateway.wait_until(lambda: grpc_serving(address, "", credentials), 60, "serving")
        with TaggingClient(address, credentials=credentials) as client:
            response = client.tag(png(), timeout=120)
        assert response.result.usage.mllm_calls >= 1  # TLS to the gateway, plaintext behind it
        assert _refused(address)  # a plaintext client
    finally:
        gateway.stop()
