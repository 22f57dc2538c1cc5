"""Triton python-backend model `mllm`: a thin adapter over tagllm.mllm.

Everything but the Triton glue lives in `tagllm.mllm.serving`, which is tested without Triton.
"""

import triton_python_backend_utils as pb_utils

from tagllm.mllm.serving import ModelAdapter
from tagllm.mllm.tensors import INPUTS, OUTPUTS


class TritonPythonModel:
    def initialize(self, args):
        """Called once when the model loads; `args["model_config"]` is config.pbtxt as JSON."""
        self.adapter = ModelAdapter.from_triton_config(args["model_config"])

    def execute(self, requests):
        """Triton hands over a list of requests and expects one response per request, in order."""
        responses = []
        for request in requests:
            arrays = {}
            for name in INPUTS:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                arrays[name] = tensor.as_numpy() if tensor is not None else None
            outputs, error = self.adapter.handle(arrays)
            if error is not None:
                code = (
                    pb_utils.TritonError.INVALID_ARG if error.invalid_input else pb_utils.TritonError.INTERNAL
                )
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(error.message, code)))
                continue
            tensors = [pb_utils.Tensor(name, outputs[name]) for name in OUTPUTS]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        """Called once when the model unloads."""
        self.adapter = None
