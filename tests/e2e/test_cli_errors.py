"""The mistakes a new user makes get a message that says what happened and what to do."""

import pytest

from tests.conftest import free_ports, png, run_cli

pytestmark = pytest.mark.e2e


def test_a_second_stack_on_busy_ports_names_the_port_and_starts_nothing(stack, qwen_dir, tmp_path):
    ports = free_ports()
    ports["gateway_port"] = stack.settings.gateway_port
    flags = [f"--{name.replace('_', '-')}={port}" for name, port in ports.items()]
    result = run_cli("up", "--model-dir", qwen_dir, "--run-dir", tmp_path / "second", *flags)
    assert result.returncode == 2
    assert (
        f"error: port {stack.settings.gateway_port} on 127.0.0.1 (gateway) is already in use" in result.stderr
    )
    assert "--gateway-port" in result.stderr
    assert not (tmp_path / "second" / "logs").exists()


def test_no_stack_says_to_start_one(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png())
    address = f"127.0.0.1:{free_ports()['gateway_port']}"
    result = run_cli("tag", image, "--address", address)
    assert result.returncode == 1 and f"cannot reach the gateway at {address}" in result.stderr
    assert "tagllm up" in result.stderr
    annotate = run_cli("annotate", tmp_path, "--out", tmp_path / "run", "--address", address)
    assert annotate.returncode == 2 and "tagllm up" in annotate.stderr
    assert not (tmp_path / "run").exists()


def test_bad_inputs_are_named_plainly(stack, tmp_path):
    address = stack.settings.gateway_address
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"these are my notes, not a picture")
    result = run_cli("tag", junk, "--address", address)
    assert "not a decodable image: 33 bytes in no format this server reads (PNG, JPEG" in result.stderr
    assert "BytesIO" not in result.stderr
    image = tmp_path / "a.png"
    image.write_bytes(png())
    unknown = run_cli("tag", image, "--vocab", "klingon", "--address", address)
    assert "unknown vocabulary 'klingon'; known: coco, objects365, voc" in unknown.stderr
    folder = run_cli("tag", tmp_path, "--address", address)
    assert folder.returncode == 1 and "a folder; tag takes image files" in folder.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_cli("annotate", empty, "--out", tmp_path / "run", "--address", address)
    assert nothing.returncode == 2 and "no images in" in nothing.stderr
    assert not (tmp_path / "run").exists()
