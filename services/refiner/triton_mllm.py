"""The MLLM contract over Triton's KServe v2 gRPC API (model `mllm`)."""

from __future__ import annotations

import threading

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from tagllm.mllm.contract import ErrorKind, MLLMError, MLLMRequest, MLLMResponse
from tagllm.mllm.tensors import OUTPUTS, request_to_arrays, response_from_arrays

MODEL_NAME = "mllm"
_KINDS = {
    "StatusCode.INVALID_ARGUMENT": ErrorKind.INVALID_INPUT,
    "StatusCode.UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "StatusCode.RESOURCE_EXHAUSTED": ErrorKind.UNAVAILABLE,
    "StatusCode.DEADLINE_EXCEEDED": ErrorKind.DEADLINE,
}


class TritonMLLM:
    """Thread-safe client; `timeout` caps every call (seconds), a deadline may shorten it."""

    def __init__(self, url: str, timeout: float = 120.0, model_name: str = MODEL_NAME) -> None:
        self.url = url
        self.model_name = model_name
        self.timeout = timeout
        self._client = triton_grpc.InferenceServerClient(url=url)
        self._version = ""
        self._local = threading.local()

    @property
    def version(self) -> str:
        return self._version

    def set_deadline(self, seconds: float | None) -> None:
        """Caps the timeout of calls made from this thread (the caller's remaining deadline)."""
        self._local.deadline = seconds

    def run(self, request: MLLMRequest) -> MLLMResponse:
        inputs = []
        for name, array in request_to_arrays(request).items():
            tensor = triton_grpc.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton_grpc.InferRequestedOutput(name) for name in OUTPUTS]
        timeout = self.timeout
        deadline = getattr(self._local, "deadline", None)
        if deadline is not None:
            timeout = max(0.001, min(timeout, deadline))
        try:
            result = self._client.infer(self.model_name, inputs, outputs=outputs, client_timeout=timeout)
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            kind = _KINDS.get(status, ErrorKind.INTERNAL)
            raise MLLMError(f"model server: {exc.message()}", kind) from exc
        arrays: dict[str, np.ndarray] = {name: result.as_numpy(name) for name in OUTPUTS}
        response = response_from_arrays(arrays)
        self._version = response.model_version or self._version
        return response

    def ready(self) -> bool:
        try:
            return bool(self._client.is_model_ready(self.model_name))
        except InferenceServerException:
            return False

    def close(self) -> None:
        self._client.close()
