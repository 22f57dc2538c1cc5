"""The model server's side of the contract: tensors in, model run, tensors out.

`services/triton/.../model.py` only moves tensors between Triton and `ModelAdapter.handle`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import traceback
from typing import Any

import numpy as np

from tagllm.mllm.contract import MLLM
from tagllm.mllm.default_model import MODEL_DIR_ENV
from tagllm.mllm.null import NullMLLM
from tagllm.mllm.tensors import request_from_arrays, response_to_arrays
from tagllm.mllm.transformers_backend import TransformersMLLM


@dataclasses.dataclass(frozen=True)
class AdapterError:
    message: str
    invalid_input: bool


class ModelAdapter:
    def __init__(self, mllm: MLLM) -> None:
        self.mllm = mllm

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

    def handle(
        self, arrays: dict[str, np.ndarray | None]
    ) -> tuple[dict[str, np.ndarray] | None, AdapterError | None]:
        """Outputs for one request, or the error to answer with; never raises."""
        try:
            request = request_from_arrays(arrays)
            response = self.mllm.run(request)
        except ValueError as exc:  # malformed tensors, undecodable image and the like
            return None, AdapterError(f"invalid request: {exc}", invalid_input=True)
        except Exception as exc:
            traceback.print_exc()
            return None, AdapterError(f"model failed: {type(exc).__name__}: {exc}", invalid_input=False)
        return response_to_arrays(response), None

    def cache_stats(self) -> dict[str, float]:
        """Counters of the image-prefix cache, for the server's metrics (zeros without one)."""
        cache = getattr(self.mllm, "prefix_cache", None)
        if cache is None:
            return {"hits": 0, "misses": 0, "evictions": 0, "size": 0}
        return cache.stats()
