import numpy as np
import pytest

from tagllm.mllm.contract import MLLMRequest, MLLMResponse, Mode, PromptResult
from tagllm.mllm.serving import ModelAdapter
from tagllm.mllm.tensors import (
    MODEL_NAME,
    request_from_arrays,
    request_to_arrays,
    response_from_arrays,
    response_to_arrays,
)


def test_request_round_trip():
    request = MLLMRequest(b"\x89PNG", ("a, b?", "ünïcode"), Mode.GENERATE, 17, (("cat", "dog"), ()), "NO")
    assert request_from_arrays(request_to_arrays(request)) == request
    score = MLLMRequest(b"img", ("q",), Mode.SCORE)
    assert request_from_arrays(request_to_arrays(score)) == score


def test_response_round_trip():
    response = MLLMResponse((PromptResult("cat", 0.25, 70, 3), PromptResult("", 0.5, 71, 0)), 0.125, "m/1")
    assert response_from_arrays(response_to_arrays(response)) == response


@pytest.mark.parametrize(
    "change, message",
    [
        ({"MODE": np.array([b"dream"], dtype=object)}, "MODE must be"),
        ({"PROMPTS": None}, "PROMPTS is required"),
        ({"PROMPTS": np.array([], dtype=object)}, "at least one prompt"),
        ({"ALLOWED_NAMES": np.array([b"[not json"], dtype=object)}, "JSON"),
        ({"ALLOWED_NAMES": np.array([b"[]", b"[]"], dtype=object)}, "one entry per prompt"),
        ({"MAX_NEW_TOKENS": np.array([0], dtype=np.int32)}, "max_new_tokens"),
        # The model caps generation itself, whatever a caller asks for.
        (
            {"MAX_NEW_TOKENS": np.array([512], dtype=np.int32)},
            r"max_new_tokens is 512; it must be in \[1, 128\]",
        ),
    ],
)
def test_malformed_tensors_are_value_errors(change, message):
    arrays = request_to_arrays(MLLMRequest(b"img", ("q",)))
    arrays.update(change)
    with pytest.raises(ValueError, match=message):
        request_from_arrays(arrays)


class Echo:
    version = "echo/1"

    def run(self, request, context=None):
        if request.image == b"boom":
            raise RuntimeError("kaput")
        if request.image == b"bad":
            raise ValueError("not a decodable image")
        results = tuple(PromptResult(p.upper(), 0.5, 1, 1) for p in request.prompts)
        return MLLMResponse(results, 0.01, self.version)


def test_adapter_answers_and_classifies_errors():
    adapter = ModelAdapter(Echo())
    outputs, error = adapter.handle(request_to_arrays(MLLMRequest(b"img", ("hi",))))
    assert error is None and outputs["TEXT"].tolist() == [[b"HI"]]  # behind a batch axis
    _, error = adapter.handle({"IMAGE": None})
    assert error.invalid_input and "IMAGE is required" in error.message
    _, error = adapter.handle(request_to_arrays(MLLMRequest(b"bad", ("hi",))))
    assert error.invalid_input
    _, error = adapter.handle(request_to_arrays(MLLMRequest(b"boom", ("hi",))))
    assert not error.invalid_input and "kaput" in error.message


def test_adapter_reads_model_dir_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("TAGLLM_MODEL_DIR", raising=False)
    with pytest.raises(ValueError, match="no checkpoint"):
        ModelAdapter.from_triton_config('{"parameters": {"model_dir": {"string_value": ""}}}')


def test_config_pbtxt_declares_exactly_the_tensors_of_the_contract():
    from tagllm.mllm.tensors import config_is_fresh
    from tagllm.resources import MODEL_REPOSITORY, resource

    config = (resource(MODEL_REPOSITORY) / MODEL_NAME / "config.pbtxt").read_text()
    assert config_is_fresh(config), "run: python -m tagllm.mllm.tensors --write <config.pbtxt>"
    assert not config_is_fresh(config.replace("TYPE_FP32", "TYPE_FP16"))


def test_adapter_answers_a_batch_with_one_outcome_per_request():
    adapter = ModelAdapter(Echo())
    malformed = request_to_arrays(MLLMRequest(b"img", ("q",)))
    malformed["MODE"] = np.array([[b"dream"]], dtype=object)
    batch = [
        request_to_arrays(MLLMRequest(b"img", ("one",))),
        malformed,
        request_to_arrays(MLLMRequest(b"bad", ("x",))),
        request_to_arrays(MLLMRequest(b"img", ("gone",))),
        request_to_arrays(MLLMRequest(b"img", ("two", "three"))),
    ]
    outcomes = adapter.handle_batch(
        batch, [lambda: False, lambda: False, lambda: False, lambda: True, lambda: False]
    )
    assert [error is None for _, error in outcomes] == [True, False, False, False, True]
    assert outcomes[0][0]["TEXT"].tolist() == [[b"ONE"]]
    assert outcomes[4][0]["TEXT"].tolist() == [[b"TWO", b"THREE"]]
    assert "MODE must be" in outcomes[1][1].message and outcomes[1][1].invalid_input
    assert outcomes[2][1].invalid_input and not outcomes[2][1].cancelled
    assert outcomes[3][1].cancelled and adapter.cancelled == 1


def test_the_batch_size_setting_reaches_the_model_servers_config(tmp_path):
    from tagllm.stack.triton import TritonSettings, prepare_model_repository

    for size in (1, 16):
        repository = prepare_model_repository(
            TritonSettings(model_dir=tmp_path, max_batch_size=size), tmp_path
        )
        config = (repository / MODEL_NAME / "config.pbtxt").read_text()
        assert f"\nmax_batch_size: {size}\n" in config and f"preferred_batch_size: [ {size} ]" in config
    with pytest.raises(ValueError, match="at least 1"):
        prepare_model_repository(TritonSettings(model_dir=tmp_path, max_batch_size=0), tmp_path)


def test_instances_and_their_threads_reach_the_model_servers_config_and_environment(tmp_path, monkeypatch):
    from tagllm.stack.triton import (
        TritonSettings,
        instance_threads,
        prepare_model_repository,
        triton_environment,
    )

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})

    def written(**settings) -> str:
        repository = prepare_model_repository(TritonSettings(model_dir=tmp_path, **settings), tmp_path)
        return (repository / MODEL_NAME / "config.pbtxt").read_text()

    assert "instance_group [ { kind: KIND_CPU, count: 1 } ]" in written()
    assert 'key: "threads", value: { string_value: "0" }' in written()  # one instance: torch's choice
    two = written(instances=2)
    assert "instance_group [ { kind: KIND_CPU, count: 2 } ]" in two
    assert 'key: "threads", value: { string_value: "2" }' in two  # the 4 cores shared out
    assert 'key: "threads", value: { string_value: "1" }' in written(instances=2, threads=1)
    assert instance_threads(TritonSettings(model_dir=tmp_path, instances=8)) == 1
    with pytest.raises(ValueError, match="instances must be at least 1"):
        written(instances=0)
    # The python backend runs the model on a thread where a thread count set at load time does
    # not hold: the count goes through the server's environment as well.
    assert triton_environment(3)["OMP_NUM_THREADS"] == triton_environment(3)["MKL_NUM_THREADS"] == "3"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in triton_environment(0)  # torch's own choice
