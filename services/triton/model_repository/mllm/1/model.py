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
_CANCELLED_METRIC = (
    "tagllm_model_cancelled_requests_total",
    "Requests whose work the model dropped because their callers cancelled them.",
)


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
        name, description = _CANCELLED_METRIC
        self.families.append(
            pb_utils.MetricFamily(name=name, description=description, kind=pb_utils.MetricFamily.COUNTER)
        )
        self.cancelled_metric = self.families[-1].Metric(labels=labels)
        self.reported_cancelled = 0

    def execute(self, requests):
        """Triton hands over the requests of one dynamic batch and expects one response per
        request, in order; the adapter runs their work together."""
        batch = []
        for request in requests:
            arrays = {}
            for spec in INPUTS:
                tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
                arrays[spec.name] = tensor.as_numpy() if tensor is not None else None
            batch.append(arrays)
        outcomes = self.adapter.handle_batch(batch, [request.is_cancelled for request in requests])
        responses = []
        for outputs, error in outcomes:
            if outputs is None:
                assert error is not None
                if error.cancelled:
                    code = pb_utils.TritonError.CANCELLED
                elif error.invalid_input:
                    code = pb_utils.TritonError.INVALID_ARG
                else:
                    code = pb_utils.TritonError.INTERNAL
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
        if self.adapter.cancelled > self.reported_cancelled:
            self.cancelled_metric.increment(self.adapter.cancelled - self.reported_cancelled)
            self.reported_cancelled = self.adapter.cancelled

    def finalize(self):
        """Called once when the model unloads."""
        self.metrics, self.families = {}, []
