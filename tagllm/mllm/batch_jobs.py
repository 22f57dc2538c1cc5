"""The book-keeping of one batch of requests inside the model: which are still wanted, what
each has answered so far, and the error each one ends with."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tagllm.mllm.contract import ErrorKind, MLLMError, MLLMRequest, PromptResult
from tagllm.mllm.kv_rows import Prefix


@dataclasses.dataclass(eq=False)
class Job:
    """One request of a batch."""

    index: int  # its place in the batch
    request: MLLMRequest
    constraints: list[Any]  # per prompt, its AllowedNamesConstraint or None
    # Token ids of the text all prompts share and of each one's rest; None: prompts run alone.
    split: tuple[list[int], list[list[int]]] | None
    image: Callable[[], Any]  # the decoded image, decoded on first use
    results: list[PromptResult | None]
    prefix: Prefix | None = None  # header, image and shared instructions, once computed


@dataclasses.dataclass(frozen=True, eq=False)
class Row:
    """One prompt's suffix, a row of a batched forward."""

    job: Job
    prompt: int
    suffix: list[int]

    @property
    def constraint(self) -> Any:
        return self.job.constraints[self.prompt]


class Batch:
    """Outcomes of a batch's requests: None while a request is open, else its error."""

    def __init__(self, outcomes: list[Any], cancelled: Sequence[Callable[[], bool]]) -> None:
        self.outcomes = outcomes
        self.cancelled = cancelled
        self.dropped = 0

    def is_live(self, job: Job) -> bool:
        return self.outcomes[job.index] is None

    def live(self, jobs: Sequence[Job]) -> list[Job]:
        return [job for job in jobs if self.is_live(job)]

    def fail(self, job: Job, error: Exception) -> None:
        self.outcomes[job.index] = error

    def drop_cancelled(self, jobs: Sequence[Job]) -> bool:
        """Ends the open jobs whose callers have gone; True when any was dropped."""
        dropped = False
        for job in self.live(jobs):
            if self.cancelled[job.index]():
                self.fail(job, MLLMError("the caller cancelled the request", ErrorKind.CANCELLED))
                dropped = True
        return dropped
