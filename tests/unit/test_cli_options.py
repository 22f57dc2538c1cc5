"""The gateway flags every client command shares: the key from the environment or a file."""

import argparse

import pytest

from tagllm.cli.options import add_gateway_arguments, gateway_client


def client_for(argv, monkeypatch, **environment):
    for name in ("TAGLLM_API_KEY", "TAGLLM_API_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_gateway_arguments(parser)
    return gateway_client(parser.parse_args(argv))


def test_the_key_comes_from_the_flag_the_environment_or_a_file(monkeypatch, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    cases = [
        ([], {}, None),
        (["--api-key", "flag"], {"TAGLLM_API_KEY": "env"}, "flag"),
        ([], {"TAGLLM_API_KEY": "env", "TAGLLM_API_KEY_FILE": str(key_file)}, "env"),
        ([], {"TAGLLM_API_KEY_FILE": str(key_file)}, "from-file"),
    ]
    for argv, environment, key in cases:
        client = client_for(argv, monkeypatch, **environment)
        expected = [("authorization", f"Bearer {key}")] if key else []
        assert list(client.metadata) == expected, (argv, environment)
        client.close()


def test_an_unreadable_key_file_ends_the_command(monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match="TAGLLM_API_KEY_FILE"):
        client_for([], monkeypatch, TAGLLM_API_KEY_FILE=str(tmp_path / "absent"))
