"""The model server's side of the contract: tensors in, model run, tensors out.

`services/triton/.../model.py` only moves tensors between Triton and `ModelAdapter.handle_batch`,
which answers the requests of one dynamic batch together when the model can (`run_batch`) and
one by one otherwise; every request gets its own answer or its own error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tagllm.mllm.contract import MLLM, ErrorKind, MLLMError, MLLMRequest, MLLMResponse
from tagllm.mllm.default_model import MODEL_DIR_ENV
from tagllm.mllm.null import NullMLLM
from tagllm.mllm.tensors import request_from_arrays, response_to_arrays
from tagllm.mllm.transformers_backend import TransformersMLLM


@dataclasses.dataclass(frozen=True)
class AdapterError:
    message: str
    invalid_input: bool
    cancelled: bool = False


Arrays = Mapping[str, Any]
Outcome = tuple[dict[str, Any] | None, AdapterError | None]


class ModelAdapter:
    def __init__(self, mllm: MLLM) -> None:
        self.mllm = mllm
        # Requests the model dropped because their callers cancelled them (a server metric).
        self.cancelled = 0

    @classmethod
    def from_triton_config(cls, model_config: str | dict[str, Any]) -> ModelAdapter:
        config = json.loads(model_config) if isinstance(model_config, str) else model_config
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        if params.get("backend") == "null":
            return cls(NullMLLM())
        model_dir = params.get("model_dir") or os.environ.get(MODEL_DIR_ENV, "")
        if not model_dir:
            raise ValueError(f"no checkpoint: set parameter model_dir in config.pbtxt or {MODEL_DIR_ENV}")
        mllm = TransformersMLLM(
            model_dir,
            device=params.get("device") or "cpu",
            dtype=params.get("dtype") or "float32",
            shared_prefix=(params.get("shared_prefix") or "true").lower() == "true",
            threads=int(params.get("threads") or 0) or None,
            prefix_cache_bytes=int(params.get("prefix_cache_bytes") or 0),
        )
        # Triton reports the model ready when this returns: warm, so that readiness means it.
        if (params.get("warm_up") or "true").lower() == "true":
            mllm.warm_up()
        return cls(mllm)

    def handle(self, arrays: Arrays) -> Outcome:
        """Outputs for one request, or the error to answer with; never raises."""
        return self.handle_batch([arrays])[0]

    def handle_batch(
        self, batch: Sequence[Arrays], cancelled: Sequence[Callable[[], bool]] | None = None
    ) -> list[Outcome]:
        """Outputs or an error for each request of a batch, in order; never raises.
        `cancelled[i]()` says whether request i's caller has gone (its work is then dropped)."""
        checks = list(cancelled) if cancelled is not None else [lambda: False] * len(batch)
        outcomes: list[Outcome | None] = [None] * len(batch)
        parsed: list[tuple[int, MLLMRequest]] = []
        for i, arrays in enumerate(batch):
            try:
                parsed.append((i, request_from_arrays(arrays)))
            except ValueError as exc:  # malformed tensors
                outcomes[i] = (None, AdapterError(f"invalid request: {exc}", invalid_input=True))
        results = self._run([r for _, r in parsed], [checks[i] for i, _ in parsed])
        for (i, _), result in zip(parsed, results, strict=True):
            outcomes[i] = self._outcome(result)
        return [outcome for outcome in outcomes if outcome is not None]

    def _run(
        self, requests: list[MLLMRequest], cancelled: list[Callable[[], bool]]
    ) -> list[MLLMResponse | Exception]:
        run_batch = getattr(self.mllm, "run_batch", None)
        if run_batch is not None:
            try:
                return run_batch(requests, cancelled)
            except Exception as exc:  # run_batch answers per request; this is a bug, for them all
                return [exc] * len(requests)
        results: list[MLLMResponse | Exception] = []
        for request, gone in zip(requests, cancelled, strict=True):
            try:
                if gone():
                    raise MLLMError("the caller cancelled the request", ErrorKind.CANCELLED)
                results.append(self.mllm.run(request))
            except Exception as exc:
                results.append(exc)
        return results

    def _outcome(self, result: MLLMResponse | Exception) -> Outcome:
        if isinstance(result, MLLMResponse):
            return response_to_arrays(result), None
        if isinstance(result, MLLMError) and result.kind is ErrorKind.CANCELLED:
            self.cancelled += 1
            return None, AdapterError(str(result), invalid_input=False, cancelled=True)
        if isinstance(result, ValueError):  # undecodable image and the like
            return None, AdapterError(f"invalid request: {result}", invalid_input=True)
        traceback.print_exception(result)
        return None, AdapterError(f"model failed: {type(result).__name__}: {result}", invalid_input=False)

    def cache_stats(self) -> dict[str, float]:
        """Counters of the image-prefix cache, for the server's metrics (zeros without one)."""
        cache = getattr(self.mllm, "prefix_cache", None)
        if cache is None:
            return {"hits": 0, "misses": 0, "evictions": 0, "size": 0}
        return cache.stats()
