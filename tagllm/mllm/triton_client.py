"""The MLLM contract over Triton's KServe v2 gRPC API (model `mllm`), across replicas.

With several Triton replicas, every request about one image goes to the same replica
(rendezvous hashing on the image's hash), so the replica's image-prefix cache serves the second
stage; adding or removing a replica moves only the images that hashed to it. A replica that is
unavailable is skipped for the next one in that image's order.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from tagllm.mllm.contract import NO_CONTEXT, CallContext, ErrorKind, MLLMError, MLLMRequest, MLLMResponse
from tagllm.mllm.tensors import INPUTS, MODEL_NAME, OUTPUTS, request_to_arrays, response_from_arrays

_KINDS = {
    "StatusCode.INVALID_ARGUMENT": ErrorKind.INVALID_INPUT,
    "StatusCode.UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "StatusCode.RESOURCE_EXHAUSTED": ErrorKind.UNAVAILABLE,
    "StatusCode.DEADLINE_EXCEEDED": ErrorKind.DEADLINE,
}


INPUT_SPECS = {spec.name: spec for spec in INPUTS}
# How often a waiting call looks whether its caller is still there.
_CANCEL_POLL_SECONDS = 0.05


def replica_order(urls: list[str], image: bytes) -> list[int]:
    """Indices of `urls`, the image's preferred replica first (highest random weight)."""
    key = hashlib.sha256(image).digest()
    weights = [hashlib.sha256(url.encode() + key).digest() for url in urls]
    return sorted(range(len(urls)), key=lambda i: weights[i], reverse=True)


class TritonMLLM:
    """Thread-safe client; `timeout` caps every call (seconds), the caller's deadline may shorten it.

    `credentials` (gRPC channel credentials) turn on TLS to every replica; `probe_timeout` bounds
    each replica's readiness check, so a hung server reads as not ready instead of hanging.
    """

    def __init__(
        self,
        urls: str | list[str],
        timeout: float = 120.0,
        model_name: str = MODEL_NAME,
        credentials: object | None = None,
        probe_timeout: float = 2.0,
    ) -> None:
        self.urls = [u.strip() for u in urls.split(",")] if isinstance(urls, str) else list(urls)
        if not self.urls or not all(self.urls):
            raise ValueError("at least one Triton address is needed")
        self.model_name = model_name
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self._clients = [triton_grpc.InferenceServerClient(url=url, creds=credentials) for url in self.urls]
        self._version = ""

    @property
    def version(self) -> str:
        return self._version

    def run(self, request: MLLMRequest, context: CallContext = NO_CONTEXT) -> MLLMResponse:
        inputs = []
        for name, array in request_to_arrays(request).items():
            tensor = triton_grpc.InferInput(name, list(array.shape), INPUT_SPECS[name].wire_type)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton_grpc.InferRequestedOutput(spec.name) for spec in OUTPUTS]
        error: MLLMError | None = None
        for index in replica_order(self.urls, request.image):
            context.check()  # before each replica: the caller may have gone or run out of time
            remaining = context.remaining()
            timeout = self.timeout if remaining is None else min(self.timeout, remaining)
            try:
                result = self._infer(self._clients[index], inputs, outputs, context, timeout)
            except InferenceServerException as exc:
                kind = _KINDS.get(str(exc.status() or ""), ErrorKind.INTERNAL)
                error = MLLMError(f"model server {self.urls[index]}: {exc.message()}", kind)
                if kind is ErrorKind.UNAVAILABLE:
                    continue  # try the image's next replica
                raise error from exc
            arrays: dict[str, np.ndarray] = {spec.name: result.as_numpy(spec.name) for spec in OUTPUTS}
            response = response_from_arrays(arrays)
            self._version = response.model_version or self._version
            return response
        assert error is not None
        raise error

    def _infer(self, client, inputs, outputs, context: CallContext, timeout: float):
        """One inference call, cancelled as soon as the caller goes away or runs out of time:
        the server then drops the request, and this thread is free at once."""
        done = threading.Event()
        outcome: dict = {}

        def finished(result, error) -> None:
            outcome.update(result=result, error=error)
            done.set()

        call = client.async_infer(
            self.model_name,
            inputs,
            finished,
            outputs=outputs,
            request_id=context.request_id,
            client_timeout=timeout,
        )
        while not done.wait(_CANCEL_POLL_SECONDS):
            try:
                context.check()
            except MLLMError:
                call.cancel()
                raise
        if outcome["error"] is not None:
            raise outcome["error"]
        return outcome["result"]

    def ready(self) -> bool:
        """Ready when at least one replica serves the model."""
        for client in self._clients:
            try:
                if client.is_model_ready(self.model_name, client_timeout=self.probe_timeout):
                    return True
            except InferenceServerException:
                continue
        return False

    def close(self) -> None:
        for client in self._clients:
            client.close()
