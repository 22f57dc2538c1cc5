"""The MLLM contract every strategy talks to (DESIGN.md section 5).

One request carries one image and N prompts of one kind. `generate` returns short answers,
optionally restricted to a list of allowed names; `score` returns P(yes) of a yes/no answer.
Implementations: the in-process transformers model (`tagllm.mllm.transformers_backend`) and the
Triton client the refiner uses (`services.refiner.triton_client`).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol


class Mode(enum.StrEnum):
    GENERATE = "generate"
    SCORE = "score"


@dataclasses.dataclass(frozen=True)
class MLLMRequest:
    """One image and the prompts of one stage for it."""

    image: bytes
    prompts: tuple[str, ...]
    mode: Mode = Mode.GENERATE
    max_new_tokens: int = 32
    # Per prompt, the names an answer may consist of; None leaves the answer free.
    allowed_names: tuple[tuple[str, ...], ...] | None = None
    # Whether the constrained answer may be the word "none" instead of a list of names.
    allow_none: bool = True

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError("a request needs at least one prompt")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.allowed_names is not None and len(self.allowed_names) != len(self.prompts):
            raise ValueError("allowed_names needs one entry per prompt")


@dataclasses.dataclass(frozen=True)
class PromptResult:
    text: str
    # P(yes) / (P(yes) + P(no)) at the answer's first token; meaningful in score mode.
    yes_probability: float
    prompt_tokens: int
    generated_tokens: int


@dataclasses.dataclass(frozen=True)
class MLLMResponse:
    results: tuple[PromptResult, ...]
    # Seconds the model itself computed for this request (no queueing, no transport).
    compute_seconds: float
    model_version: str = ""


class MLLM(Protocol):
    """Anything that answers `MLLMRequest`s."""

    def run(self, request: MLLMRequest) -> MLLMResponse: ...

    @property
    def version(self) -> str: ...


class ErrorKind(enum.StrEnum):
    INVALID_INPUT = "invalid_input"  # the request itself is wrong (undecodable image, bad tensors)
    UNAVAILABLE = "unavailable"  # server down, overloaded or shutting down: retry later
    DEADLINE = "deadline"  # the caller's deadline passed
    INTERNAL = "internal"  # the model failed


class MLLMError(RuntimeError):
    """The model could not answer a request."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.INTERNAL) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def retryable(self) -> bool:
        return self.kind is ErrorKind.UNAVAILABLE
