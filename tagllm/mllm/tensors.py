"""The MLLM contract as named tensors: the wire format of Triton model `mllm`.

This table is the one definition of the tensors: the Triton client, the model adapter and the
`input`/`output` blocks of `config.pbtxt` (generated from it: `python -m tagllm.mllm.tensors
--write CONFIG`, checked by a test) all read it. Pure numpy, so both sides share it.

Inputs:  IMAGE (one encoded image), PROMPTS (N), MODE (generate|score), MAX_NEW_TOKENS,
         ALLOWED_NAMES (N: a JSON list of names per prompt, "" for a free answer), NONE_ANSWER
         (what a constrained answer may say instead of names; "" for nothing).
Outputs: TEXT, YES_PROBABILITY, PROMPT_TOKENS, GENERATED_TOKENS (N each), COMPUTE_SECONDS and
         MODEL_VERSION (one each).

The model batches requests (`max_batch_size` > 0), so every tensor on the wire has a leading
batch axis of 1: one request is one image. The per-prompt inputs are ragged (requests with
different numbers of prompts share a batch), and every input is always sent, so that any two
requests can be batched together.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from tagllm.mllm.contract import DEFAULT_MAX_NEW_TOKENS, MLLMRequest, MLLMResponse, Mode, PromptResult

# The name of the model in Triton's repository (its folder) and in every request.
MODEL_NAME = "mllm"

_NUMPY = {
    "TYPE_STRING": np.object_,
    "TYPE_INT32": np.int32,
    "TYPE_BOOL": np.bool_,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    # Triton's config.pbtxt data type (TYPE_STRING, TYPE_INT32, ...).
    data_type: str
    # -1: one entry per prompt.
    dims: int
    optional: bool = False

    @property
    def numpy_dtype(self) -> type:
        return _NUMPY[self.data_type]

    @property
    def wire_type(self) -> str:
        """The KServe v2 datatype the client declares (BYTES for strings)."""
        kind = self.data_type.removeprefix("TYPE_")
        return "BYTES" if kind == "STRING" else kind

    def config_line(self, ragged: bool = False) -> str:
        optional = ", optional: true" if self.optional else ""
        # An input with one entry per prompt may differ in length between the requests of a batch.
        ragged_batch = ", allow_ragged_batch: true" if ragged and self.dims == -1 else ""
        return (
            f'  {{ name: "{self.name}", data_type: {self.data_type}, dims: [ {self.dims} ]'
            f"{optional}{ragged_batch} }}"
        )


INPUTS = (
    TensorSpec("IMAGE", "TYPE_STRING", 1),
    TensorSpec("PROMPTS", "TYPE_STRING", -1),
    TensorSpec("MODE", "TYPE_STRING", 1),
    TensorSpec("MAX_NEW_TOKENS", "TYPE_INT32", 1, optional=True),
    TensorSpec("ALLOWED_NAMES", "TYPE_STRING", -1, optional=True),
    TensorSpec("NONE_ANSWER", "TYPE_STRING", 1, optional=True),
)
OUTPUTS = (
    TensorSpec("TEXT", "TYPE_STRING", -1),
    TensorSpec("YES_PROBABILITY", "TYPE_FP32", -1),
    TensorSpec("PROMPT_TOKENS", "TYPE_INT32", -1),
    TensorSpec("GENERATED_TOKENS", "TYPE_INT32", -1),
    TensorSpec("COMPUTE_SECONDS", "TYPE_FP64", 1),
    TensorSpec("MODEL_VERSION", "TYPE_STRING", 1),
)
_SPECS = {spec.name: spec for spec in (*INPUTS, *OUTPUTS)}


def _array(name: str, values: Iterable) -> np.ndarray:
    """One request's tensor: its values behind a batch axis of 1."""
    dtype = _SPECS[name].numpy_dtype
    if dtype is np.object_:
        return np.array([[v.encode("utf-8") if isinstance(v, str) else v for v in values]], dtype=np.object_)
    return np.array([list(values)], dtype=dtype)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def request_to_arrays(request: MLLMRequest) -> dict[str, np.ndarray]:
    names = request.allowed_names or ((),) * len(request.prompts)
    return {
        "IMAGE": _array("IMAGE", [request.image]),
        "PROMPTS": _array("PROMPTS", request.prompts),
        "MODE": _array("MODE", [request.mode.value]),
        "MAX_NEW_TOKENS": _array("MAX_NEW_TOKENS", [request.max_new_tokens]),
        "NONE_ANSWER": _array("NONE_ANSWER", [request.none_answer]),
        # Always sent ("" for a free answer): requests with and without it batch together.
        "ALLOWED_NAMES": _array("ALLOWED_NAMES", (json.dumps(list(n)) if n else "" for n in names)),
    }


def request_from_arrays(arrays: Mapping[str, np.ndarray | None]) -> MLLMRequest:
    """Raises ValueError with a message fit for the caller when the tensors are malformed."""
    for spec in INPUTS:
        if not spec.optional and arrays.get(spec.name) is None:
            raise ValueError(f"input {spec.name} is required")
    image, prompts, mode_array = arrays["IMAGE"], arrays["PROMPTS"], arrays["MODE"]
    assert image is not None and prompts is not None and mode_array is not None
    image = image.reshape(-1)
    if image.size != 1:
        raise ValueError("IMAGE must hold exactly one encoded image")
    mode_text = _text(mode_array.reshape(-1)[0])
    try:
        mode = Mode(mode_text)
    except ValueError:
        raise ValueError(f"MODE must be 'generate' or 'score', got {mode_text!r}") from None
    max_new = arrays.get("MAX_NEW_TOKENS")
    max_new_tokens = int(max_new.reshape(-1)[0]) if max_new is not None else DEFAULT_MAX_NEW_TOKENS
    allowed = arrays.get("ALLOWED_NAMES")
    allowed_names = None
    if allowed is not None:
        try:
            allowed_names = tuple(
                tuple(json.loads(_text(a))) if _text(a) else () for a in allowed.reshape(-1)
            )
        except json.JSONDecodeError as exc:
            raise ValueError(f"ALLOWED_NAMES entries must be JSON lists: {exc}") from None
    prompt_texts = tuple(_text(p) for p in prompts.reshape(-1))
    if allowed_names is not None and len(allowed_names) == len(prompt_texts) and not any(allowed_names):
        allowed_names = None  # every answer free: the same as no constraint
    none_answer = arrays.get("NONE_ANSWER")
    return MLLMRequest(
        image=bytes(image[0]),
        prompts=prompt_texts,
        mode=mode,
        max_new_tokens=max_new_tokens,
        allowed_names=allowed_names,
        none_answer=_text(none_answer.reshape(-1)[0]) if none_answer is not None else MLLMRequest.none_answer,
    )


def response_to_arrays(response: MLLMResponse) -> dict[str, np.ndarray]:
    results = response.results
    return {
        "TEXT": _array("TEXT", (r.text for r in results)),
        "YES_PROBABILITY": _array("YES_PROBABILITY", (r.yes_probability for r in results)),
        "PROMPT_TOKENS": _array("PROMPT_TOKENS", (r.prompt_tokens for r in results)),
        "GENERATED_TOKENS": _array("GENERATED_TOKENS", (r.generated_tokens for r in results)),
        "COMPUTE_SECONDS": _array("COMPUTE_SECONDS", [response.compute_seconds]),
        "MODEL_VERSION": _array("MODEL_VERSION", [response.model_version]),
    }


def response_from_arrays(arrays: Mapping[str, np.ndarray]) -> MLLMResponse:
    results = tuple(
        PromptResult(_text(t), float(p), int(n), int(g))
        for t, p, n, g in zip(
            arrays["TEXT"].reshape(-1),
            arrays["YES_PROBABILITY"].reshape(-1),
            arrays["PROMPT_TOKENS"].reshape(-1),
            arrays["GENERATED_TOKENS"].reshape(-1),
            strict=True,
        )
    )
    return MLLMResponse(
        results=results,
        compute_seconds=float(arrays["COMPUTE_SECONDS"].reshape(-1)[0]),
        model_version=_text(arrays["MODEL_VERSION"].reshape(-1)[0]),
    )


# -- config.pbtxt --------------------------------------------------------------------------------

_BEGIN = "# BEGIN tensors: generated by `python -m tagllm.mllm.tensors --write`; do not edit"
_END = "# END tensors"
_BLOCK = re.compile(re.escape(_BEGIN) + r".*?" + re.escape(_END), re.S)


def config_block() -> str:
    """The `input` and `output` blocks of config.pbtxt, between their markers."""
    lines = [_BEGIN, "input ["]
    lines += [
        spec.config_line(ragged=True) + ("," if i < len(INPUTS) - 1 else "") for i, spec in enumerate(INPUTS)
    ]
    lines += ["]", "output ["]
    lines += [spec.config_line() + ("," if i < len(OUTPUTS) - 1 else "") for i, spec in enumerate(OUTPUTS)]
    lines += ["]", _END]
    return "\n".join(lines)


def config_is_fresh(config_text: str) -> bool:
    match = _BLOCK.search(config_text)
    return match is not None and match.group(0) == config_block()


def write_config(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if not _BLOCK.search(text):
        raise ValueError(f"{path}: no generated tensor block to replace")
    path.write_text(_BLOCK.sub(lambda _: config_block(), text), encoding="utf-8")


# -- the model's queue ---------------------------------------------------------------------------

_QUEUE_BOUND = re.compile(r"max_queue_size:\s*\d+")


def with_queue_bound(config_text: str, max_queue_size: int) -> str:
    """`config_text` with at most `max_queue_size` requests waiting in Triton's queue (the
    default queue policy of `dynamic_batching`, where Triton keeps its queue; 0: unbounded).
    Triton refuses a request beyond it at once ("Exceeds maximum queue size") instead of letting
    it wait out its caller's deadline. Any `dynamic_batching` settings already there are kept."""
    if max_queue_size < 0:
        raise ValueError("max_queue_size must not be negative")
    if not max_queue_size:
        return config_text
    bound = f"max_queue_size: {max_queue_size}"
    if _QUEUE_BOUND.search(config_text):
        return _QUEUE_BOUND.sub(bound, config_text, count=1)
    policy = f"default_queue_policy {{ {bound} }}"
    batching = re.search(r"^dynamic_batching\s*\{", config_text, re.M)
    if batching:
        return config_text[: batching.end()] + f" {policy} " + config_text[batching.end() :]
    return config_text.rstrip("\n") + f"\n\ndynamic_batching {{ {policy} }}\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write_config(Path(sys.argv[2]))
    else:
        print(config_block())
