"""A model that answers instantly: for measuring what the services add around the model.

It follows the contract (one result per prompt, "none" / P(yes) = 0.5) and computes nothing,
so latency through gateway -> refiner -> Triton minus latency of Triton alone is the cost of
the services themselves. `tagllm bench` serves it as model `mllm` with backend `null`.
"""

from __future__ import annotations

import time

from tagllm.mllm.contract import NO_CONTEXT, CallContext, MLLMRequest, MLLMResponse, Mode, PromptResult


class NullMLLM:
    version = "null"

    def run(self, request: MLLMRequest, context: CallContext = NO_CONTEXT) -> MLLMResponse:
        start = time.perf_counter()
        text = "" if request.mode is Mode.SCORE else "none"
        results = tuple(
            PromptResult(text, 0.5, len(prompt), 0 if request.mode is Mode.SCORE else 1)
            for prompt in request.prompts
        )
        return MLLMResponse(results, time.perf_counter() - start, self.version)
