"""The MLLM contract every strategy talks to.

One request carries one image and N prompts of one kind. `generate` returns short answers,
optionally restricted to a list of allowed names; `score` returns P(yes) of a yes/no answer.
Implementations: the in-process transformers model (`tagllm.mllm.transformers_backend`), the
Triton client the refiner uses (`tagllm.mllm.triton_client`) and the instant `NullMLLM`.

What belongs to one call rather than to the question (the caller's deadline, its request id)
travels beside the request as a `CallContext`, so one request can be retried under another.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from typing import Protocol

# The most tokens one prompt's answer may have: the model server enforces it whatever the caller
# asks, so no request can buy minutes of decoding.
MAX_NEW_TOKENS = 128
DEFAULT_MAX_NEW_TOKENS = 32


class Mode(enum.StrEnum):
    GENERATE = "generate"
    SCORE = "score"


@dataclasses.dataclass(frozen=True)
class MLLMRequest:
    """One image and the prompts of one stage for it."""

    image: bytes
    prompts: tuple[str, ...]
    mode: Mode = Mode.GENERATE
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    # Per prompt, the names an answer may consist of; None leaves the answer free.
    allowed_names: tuple[tuple[str, ...], ...] | None = None
    # What a constrained answer may say instead of a list of names ("" allows no such answer);
    # the prompt tells the model which word that is.
    none_answer: str = "none"

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError("a request needs at least one prompt")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise ValueError(f"max_new_tokens is {self.max_new_tokens}; it must be in [1, {MAX_NEW_TOKENS}]")
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
    # Seconds the model itself computed for this request (no queueing, no transport); answered
    # in a batch, an equal share of the batch's time.
    compute_seconds: float
    model_version: str = ""


@dataclasses.dataclass(frozen=True)
class CallContext:
    """Per-call data: who asked (for logs across processes) and by when the answer is needed."""

    request_id: str = ""
    # time.monotonic() by which the caller needs the answer; None: no deadline.
    deadline: float | None = None
    # Whether the caller still waits (a gRPC context's is_active); None: always.
    is_active: Callable[[], bool] | None = None

    @classmethod
    def within(
        cls, seconds: float | None, request_id: str = "", is_active: Callable[[], bool] | None = None
    ) -> CallContext:
        """A context whose deadline is `seconds` from now (None: no deadline)."""
        return cls(request_id, None if seconds is None else time.monotonic() + seconds, is_active)

    def check(self) -> None:
        """Raises MLLMError when the caller has gone or its deadline has passed: work for nobody stops."""
        if self.is_active is not None and not self.is_active():
            raise MLLMError("the caller cancelled the request", ErrorKind.CANCELLED)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise MLLMError("the caller's deadline passed", ErrorKind.DEADLINE)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


NO_CONTEXT = CallContext()


class MLLM(Protocol):
    """Anything that answers `MLLMRequest`s."""

    def run(self, request: MLLMRequest, context: CallContext = NO_CONTEXT) -> MLLMResponse: ...

    @property
    def version(self) -> str: ...


class ErrorKind(enum.StrEnum):
    INVALID_INPUT = "invalid_input"  # the request itself is wrong (undecodable image, bad tensors)
    UNAVAILABLE = "unavailable"  # server down, overloaded or shutting down: retry later
    OVERLOADED = "overloaded"  # every replica's queue is full: retry after a moment
    DEADLINE = "deadline"  # the caller's deadline passed
    CANCELLED = "cancelled"  # the caller went away; nobody waits for the answer
    INTERNAL = "internal"  # the model failed


class MLLMError(RuntimeError):
    """The model could not answer a request."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.INTERNAL) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def retryable(self) -> bool:
        return self.kind in (ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED)
