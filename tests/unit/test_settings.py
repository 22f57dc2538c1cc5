"""The services' settings: variables read as before, bounds refused in one line that names the
variable, and a model written back as the variables that reproduce it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tagllm.settings import (
    SERVICES,
    GatewaySettings,
    MetricsSettings,
    RefinerSettings,
    SettingsError,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]


def test_variables_are_read_with_each_services_prefix():
    gateway = load_settings(
        GatewaySettings,
        environ={
            "TAGLLM_GATEWAY_PORT": "6000",
            "TAGLLM_GATEWAY_API_KEYS": " a, b ,,",
            "TAGLLM_GATEWAY_REQUIRE_API_KEYS": "true",
            "TAGLLM_GATEWAY_STREAM_IDLE_SECONDS": "2.5",
            "TAGLLM_REFINER_PORT": "7000",  # another service's
        },
    )
    assert (gateway.port, gateway.api_keys, gateway.require_api_keys) == (6000, ("a", "b"), True)
    assert gateway.stream_idle_seconds == 2.5
    refiner = load_settings(RefinerSettings, environ={"TAGLLM_REFINER_METRICS_ADDRESS": ""})
    assert refiner.metrics_address == "" and refiner.port != 7000


def test_an_empty_flag_is_false_as_before():
    settings = load_settings(GatewaySettings, environ={"TAGLLM_GATEWAY_REQUIRE_API_KEYS": ""})
    assert settings.require_api_keys is False


def test_unknown_variables_with_the_prefix_are_ignored_but_unknown_fields_in_code_are_refused():
    # Kubernetes adds TAGLLM_GATEWAY_SERVICE_HOST and the like for a Service named tagllm-gateway.
    load_settings(GatewaySettings, environ={"TAGLLM_GATEWAY_SERVICE_HOST": "10.0.0.1"})
    with pytest.raises(ValidationError, match="extra"):
        GatewaySettings(stream_windw=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "cls, field, value, message",
    [
        (GatewaySettings, "stream_window", "0", "input should be greater than or equal to 1"),
        (GatewaySettings, "port", "70000", "input should be less than or equal to 65535"),
        (GatewaySettings, "log_format", "xml", "input should be 'json' or 'console'"),
        (RefinerSettings, "triton_timeout_seconds", "0", "input should be greater than 0"),
        (MetricsSettings, "gpu_price_per_hour", "nan", "input should be a finite number"),
        (MetricsSettings, "max_vocabularies", "many", "input should be a valid integer"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(cls, field, value, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(cls, environ={cls.env_name(field): value})
    assert str(caught.value).startswith(f"{cls.env_name(field)}={value!r}: {message}")
    assert "\n" not in str(caught.value)


def test_a_check_across_fields_names_both_variables():
    with pytest.raises(SettingsError, match="^TAGLLM_GATEWAY_MAX_REQUEST_PIXELS_IN_FLIGHT must be at least "
                       "TAGLLM_GATEWAY_MAX_IMAGE_PIXELS"):  # fmt: skip
        load_settings(GatewaySettings, environ={"TAGLLM_GATEWAY_MAX_REQUEST_PIXELS_IN_FLIGHT": "5"})


def test_every_problem_is_on_the_one_line():
    with pytest.raises(SettingsError) as caught:
        load_settings(GatewaySettings, environ={"TAGLLM_GATEWAY_WORKERS": "0", "TAGLLM_GATEWAY_PORT": "x"})
    assert "TAGLLM_GATEWAY_WORKERS=" in str(caught.value) and "TAGLLM_GATEWAY_PORT=" in str(caught.value)


@pytest.mark.parametrize(
    "settings",
    [
        GatewaySettings(port=6001, api_keys=("k1", "k2"), require_api_keys=True, quota_images_per_second=2.5),
        GatewaySettings(api_keys_file=None, vocabulary_dir="/var/lib/vocabularies"),
        RefinerSettings(triton_url="dns:///triton:8001", metrics_address="", log_format="console"),
        MetricsSettings(metrics_port=0, gpu_price_per_hour=0.75, max_connection_age_seconds=30),
    ],
    ids=lambda settings: type(settings).__name__,
)
def test_to_env_writes_the_variables_that_reproduce_the_settings(settings):
    env = settings.to_env()
    assert all(name.startswith(type(settings).env_prefix()) for name in env)
    assert set(env) == {type(settings).env_name(field) for field in settings.model_fields_set}
    assert load_settings(type(settings), environ=env) == settings


def test_keys_read_from_a_file_stay_out_of_the_written_environment(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("alpha, beta\ngamma\n")
    settings = GatewaySettings(api_keys=("given",), api_keys_file=keys)
    assert settings.api_keys == ("given", "alpha", "beta", "gamma")
    env = settings.to_env()
    assert env["TAGLLM_GATEWAY_API_KEYS"] == "given" and "alpha" not in "".join(env.values())
    assert load_settings(GatewaySettings, environ=env) == settings


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_refuses_a_bad_setting_in_one_line_without_a_traceback(service):
    settings, module = SERVICES[service]
    run = subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, settings.env_name("drain_seconds"): "-1"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    (line,) = run.stderr.strip().splitlines()
    assert settings.env_name("drain_seconds") + "='-1'" in line


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_setting_says_what_it_does(service):
    settings, _ = SERVICES[service]
    assert [name for name, field in settings.model_fields.items() if not field.description] == []


def test_the_configuration_page_is_what_the_models_generate(tmp_path):
    generated = tmp_path / "configuration.md"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--out", str(generated)],
        check=True, capture_output=True,
    )  # fmt: skip
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == generated.read_text(encoding="utf-8"), "stale: run python scripts/gen_config_docs.py"
    for settings, _ in SERVICES.values():  # each by its full name, or in the table every service shares
        for name in settings.model_fields:
            assert f"`{settings.env_name(name)}`" in committed or f"`{name.upper()}`" in committed, name


def test_a_services_help_lists_its_settings_from_the_model():
    settings, module = SERVICES["refiner"]
    run = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for name, field in settings.model_fields.items():
        assert f"{settings.env_name(name)} (default {field.default!r}): {field.description}" in run.stdout
