"""The MLLM contract as named tensors: the wire format of Triton model `mllm`.

Pure numpy, so the Triton model, the Triton client and their tests share one definition.

Inputs:  IMAGE (bytes[1]), PROMPTS (bytes[N]), MODE (bytes[1]: generate|score),
         MAX_NEW_TOKENS (int32[1], optional), ALLOWED_NAMES (bytes[N], optional: a JSON list
         of names per prompt, "" for a free answer), ALLOW_NONE (bool[1], optional).
Outputs: TEXT (bytes[N]), YES_PROBABILITY (fp32[N]), PROMPT_TOKENS (int32[N]),
         GENERATED_TOKENS (int32[N]), COMPUTE_SECONDS (fp64[1]), MODEL_VERSION (bytes[1]).
"""

from __future__ import annotations

import json

import numpy as np

from tagllm.mllm.contract import MLLMRequest, MLLMResponse, Mode, PromptResult

INPUTS = ("IMAGE", "PROMPTS", "MODE", "MAX_NEW_TOKENS", "ALLOWED_NAMES", "ALLOW_NONE")
OUTPUTS = ("TEXT", "YES_PROBABILITY", "PROMPT_TOKENS", "GENERATED_TOKENS", "COMPUTE_SECONDS", "MODEL_VERSION")


def _bytes_array(values) -> np.ndarray:
    return np.array([v.encode("utf-8") if isinstance(v, str) else v for v in values], dtype=np.object_)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def request_to_arrays(request: MLLMRequest) -> dict[str, np.ndarray]:
    arrays = {
        "IMAGE": np.array([request.image], dtype=np.object_),
        "PROMPTS": _bytes_array(request.prompts),
        "MODE": _bytes_array([request.mode.value]),
        "MAX_NEW_TOKENS": np.array([request.max_new_tokens], dtype=np.int32),
        "ALLOW_NONE": np.array([request.allow_none], dtype=np.bool_),
    }
    if request.allowed_names is not None:
        arrays["ALLOWED_NAMES"] = _bytes_array(
            json.dumps(list(n)) if n else "" for n in request.allowed_names
        )
    return arrays


def request_from_arrays(arrays: dict[str, np.ndarray | None]) -> MLLMRequest:
    """Raises ValueError with a message fit for the caller when the tensors are malformed."""
    for name in ("IMAGE", "PROMPTS", "MODE"):
        if arrays.get(name) is None:
            raise ValueError(f"input {name} is required")
    image = arrays["IMAGE"].reshape(-1)
    if image.size != 1:
        raise ValueError("IMAGE must hold exactly one encoded image")
    prompts = tuple(_text(p) for p in arrays["PROMPTS"].reshape(-1))
    mode_text = _text(arrays["MODE"].reshape(-1)[0])
    try:
        mode = Mode(mode_text)
    except ValueError:
        raise ValueError(f"MODE must be 'generate' or 'score', got {mode_text!r}") from None
    max_new = arrays.get("MAX_NEW_TOKENS")
    allowed = arrays.get("ALLOWED_NAMES")
    allowed_names = None
    if allowed is not None:
        try:
            allowed_names = tuple(
                tuple(json.loads(_text(a))) if _text(a) else () for a in allowed.reshape(-1)
            )
        except json.JSONDecodeError as exc:
            raise ValueError(f"ALLOWED_NAMES entries must be JSON lists: {exc}") from None
    allow_none = arrays.get("ALLOW_NONE")
    return MLLMRequest(
        image=bytes(image[0]),
        prompts=prompts,
        mode=mode,
        max_new_tokens=int(max_new.reshape(-1)[0]) if max_new is not None else 32,
        allowed_names=allowed_names,
        allow_none=bool(allow_none.reshape(-1)[0]) if allow_none is not None else True,
    )


def response_to_arrays(response: MLLMResponse) -> dict[str, np.ndarray]:
    results = response.results
    return {
        "TEXT": _bytes_array(r.text for r in results),
        "YES_PROBABILITY": np.array([r.yes_probability for r in results], dtype=np.float32),
        "PROMPT_TOKENS": np.array([r.prompt_tokens for r in results], dtype=np.int32),
        "GENERATED_TOKENS": np.array([r.generated_tokens for r in results], dtype=np.int32),
        "COMPUTE_SECONDS": np.array([response.compute_seconds], dtype=np.float64),
        "MODEL_VERSION": _bytes_array([response.model_version]),
    }


def response_from_arrays(arrays: dict[str, np.ndarray]) -> MLLMResponse:
    texts = arrays["TEXT"].reshape(-1)
    results = tuple(
        PromptResult(_text(t), float(p), int(n), int(g))
        for t, p, n, g in zip(
            texts,
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
