"""Files the CLI reads at run time: found beside the package or through one setting, else a clear error."""

import pytest

from tagllm.cli.main import main
from tagllm.resources import MODEL_REPOSITORY, PROMETHEUS_RULES, RESOURCES_ENV, ResourceMissing, resource


def test_a_checkout_has_every_resource():
    assert (resource(MODEL_REPOSITORY) / "mllm" / "config.pbtxt").is_file()
    assert list(resource(PROMETHEUS_RULES).glob("*.yml"))


def test_the_setting_moves_the_root_and_a_missing_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(RESOURCES_ENV, str(tmp_path))
    (tmp_path / PROMETHEUS_RULES).mkdir(parents=True)
    assert resource(PROMETHEUS_RULES) == tmp_path / PROMETHEUS_RULES
    with pytest.raises(ResourceMissing, match=f"{MODEL_REPOSITORY} is not under {tmp_path}.*{RESOURCES_ENV}"):
        resource(MODEL_REPOSITORY)


def test_up_says_what_is_missing_instead_of_starting_without_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(RESOURCES_ENV, str(tmp_path / "elsewhere"))
    status = main(["up", "--model-dir", str(tmp_path), "--run-dir", str(tmp_path / "run")])
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("error: services/triton/model_repository is not under") and RESOURCES_ENV in error
