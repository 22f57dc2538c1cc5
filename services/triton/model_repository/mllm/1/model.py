"""Triton python-backend model `mllm`: a thin adapter over tagllm.mllm.

Everything but the Triton glue lives in `tagllm.mllm.serving`, which is tested without Triton.
"""

import triton_python_backend_utils as pb_utils

from tagllm.mllm.serving import ModelAdapter
from tagllm.mllm.tensors import INPUTS, OUTPUTS

_CACHE_METRICS = {
    "hits": ("tagllm_prefix_cache_hits_total", "Image prefixes served from the KV cache.", "COUNTER"),
    "misses": ("tagllm_prefix_cache_misses_total", "Image prefixes computed.", "COUNTER"),
    "evictions": ("tagllm_prefix_cache_evictions_total", "Image prefixes evicted for room.", "COUNTER"),
    "size": ("tagllm_prefix_cache_bytes", "Bytes of KV state held.", "GAUGE"),
}


class TritonPythonModel:
    def initialize(self, args):
        """Called once when the model loads; `args["model_config"]` is config.pbtxt as JSON."""
        self.adapter = ModelAdapter.from_triton_config(args["model_config"])
        labels = {"model": args["model_name"], "version": args["model_version"]}
        self.families, self.metrics = [], {}
        self.reported: dict[str, float] = {}
        for key, (name, description, kind) in _CACHE_METRICS.items():
            family = pb_utils.MetricFamily(
                name=name, description=description, kind=getattr(pb_utils.MetricFamily, kind)
            )
            self.families.append(family)
            self.metrics[key] = family.Metric(labels=labels)
            self.reported[key] = 0

    def execute(self, requests):
        """Triton hands over a list of requests and expects one response per request, in order."""
        responses = []
        for request in requests:
            arrays = {}
            for spec in INPUTS:
                tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
                arrays[spec.name] = tensor.as_numpy() if tensor is not None else None
            outputs, error = self.adapter.handle(arrays)
            if outputs is None:
                assert error is not None
                code = (
                    pb_utils.TritonError.INVALID_ARG if error.invalid_input else pb_utils.TritonError.INTERNAL
                )
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(error.message, code)))
                continue
            tensors = [pb_utils.Tensor(spec.name, outputs[spec.name]) for spec in OUTPUTS]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        self._report_cache()
        return responses

    def _report_cache(self):
        for key, value in self.adapter.cache_stats().items():
            if key == "size":
                self.metrics[key].set(value)
            elif value > self.reported[key]:
                self.metrics[key].increment(value - self.reported[key])
            self.reported[key] = value

    def finalize(self):
        """Called once when the model unloads."""
        self.metrics, self.families = {}, []
