"""What `tagllm up` hands each service process: settings objects written as their variables, read
back by the service exactly as built; one table of default ports behind the flags."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tagllm import ports
from tagllm.cli.main import build_parser
from tagllm.settings import SERVICES, load_settings
from tagllm.stack.certs import create_pki
from tagllm.stack.local import LocalStack, StackSettings
from tagllm.stack.ports import free_ports


def stack(tmp_path, **settings) -> LocalStack:
    return LocalStack(StackSettings(model_dir=tmp_path, run_dir=tmp_path, **free_ports(), **settings))


def child_settings(local: LocalStack, name: str):
    """The settings the child process reads from the environment it is started with."""
    settings_class, _ = SERVICES[name]
    return load_settings(settings_class, environ=local.service_process(name).env)


def test_each_service_reads_the_wiring_it_was_built_with(tmp_path):
    local = stack(tmp_path, log_format="console")
    s = local.settings
    gateway, refiner, metrics = (child_settings(local, name) for name in ("gateway", "refiner", "metrics"))
    assert (gateway.port, gateway.metrics_port, gateway.refiner_address) == (
        s.gateway_port, s.gateway_metrics_port, s.refiner_address,
    )  # fmt: skip
    assert (refiner.port, refiner.triton_url, refiner.metrics_address) == (
        s.refiner_port, s.triton_grpc_address, s.metrics_address,
    )  # fmt: skip
    assert (metrics.port, metrics.metrics_port) == (s.metrics_port, s.metrics_http_port)
    assert {gateway.log_format, refiner.log_format, metrics.log_format} == {"console"}
    for name in SERVICES:
        assert child_settings(local, name) == local.service_settings(name)


def test_further_settings_reach_their_service_and_a_misspelt_one_is_refused(tmp_path):
    local = stack(tmp_path, service_settings={"gateway": {"cache_entries": 0, "max_in_flight": 3}})
    gateway = child_settings(local, "gateway")
    assert (gateway.cache_entries, gateway.max_in_flight) == (0, 3)
    with pytest.raises(ValidationError, match="cache_entrys"):
        stack(tmp_path, service_settings={"gateway": {"cache_entrys": 0}}).service_settings("gateway")


def test_under_tls_internal_ports_require_client_certificates_and_the_public_one_does_not(tmp_path):
    local = stack(tmp_path, tls=True)
    local.pki = create_pki(local.settings.pki_dir)
    for name in SERVICES:
        settings = child_settings(local, name)
        assert settings.tls_cert_file == str(local.pki[name].cert)
        assert settings.tls_ca_file == str(local.pki.ca)
        assert settings.tls_client_ca_file == ("" if name == "gateway" else str(local.pki.ca))


def test_the_port_flags_and_the_stack_share_one_table_of_defaults(tmp_path):
    arguments = build_parser().parse_args(["up"])
    defaults = StackSettings(model_dir=tmp_path, run_dir=tmp_path)
    for field, (port, _) in ports.STACK_PORTS.items():
        assert getattr(arguments, field) == getattr(defaults, field) == port
    # A service started alone finds its peers where `tagllm up` puts them.
    gateway, refiner, metrics = (SERVICES[name][0]() for name in ("gateway", "refiner", "metrics"))
    assert gateway.port == ports.GATEWAY and gateway.refiner_address == ports.loopback(refiner.port)
    assert refiner.triton_url == ports.loopback(ports.TRITON_GRPC)
    assert refiner.metrics_address == ports.loopback(metrics.port)
    assert metrics.metrics_port == ports.METRICS_HTTP


def test_instances_and_threads_flags_reach_the_model_server_and_are_bounded(tmp_path):
    from tagllm.cli.stack_commands import stack_settings

    args = build_parser().parse_args(["up", "--model-instances", "2", "--model-threads", "1"])
    triton = stack_settings(args, tmp_path).triton()
    assert (triton.instances, triton.threads) == (2, 1)
    serve = build_parser().parse_args(["model", "serve", "--instances", "3"])
    assert (serve.instances, serve.threads) == (3, 0)
    for flags in (
        ["up", "--model-instances", "0"],
        ["up", "--model-threads", "-1"],
        ["model", "serve", "--instances", "0"],
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(flags)
