"""What every strategy takes and returns."""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Protocol

from tagllm.mllm.contract import MLLM, MLLMRequest, MLLMResponse
from tagllm.prompts import Prompts
from tagllm.vocab.model import Vocabulary


class StrategyName(enum.StrEnum):
    OPEN_ENDED = "open_ended"
    MULTI_OPTION = "multi_option"
    BINARY = "binary"
    TAGLLM = "tagllm"


class Verdict(enum.StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclasses.dataclass(frozen=True)
class StrategyOptions:
    strategy: StrategyName = StrategyName.TAGLLM
    # TagLLM stage 1 per group (True) or with one whole-vocabulary prompt (False).
    grouping: bool = True
    # TagLLM stage 2 with concept knowledge (True) or the bare name (False).
    concept_knowledge: bool = True
    # Drop labels scoring below this.
    min_score: float = 0.0
    # Keep at most this many labels (0: all).
    max_labels: int = 0
    # Cap on generated tokens per multi-option or open-ended answer.
    max_answer_tokens: int = 128

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.max_labels < 0:
            raise ValueError("max_labels must not be negative")
        if self.max_answer_tokens < 1:
            raise ValueError("max_answer_tokens must be at least 1")


@dataclasses.dataclass(frozen=True)
class Provenance:
    group: str = ""
    proposed: bool = False
    verdict: Verdict | None = None
    verification_score: float | None = None


@dataclasses.dataclass(frozen=True)
class Label:
    name: str
    score: float
    provenance: Provenance = Provenance()


@dataclasses.dataclass
class Usage:
    calls: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    compute_seconds: float = 0.0

    def add(self, response: MLLMResponse) -> None:
        self.calls += len(response.results)
        self.requests += 1
        self.prompt_tokens += sum(r.prompt_tokens for r in response.results)
        self.generated_tokens += sum(r.generated_tokens for r in response.results)
        self.compute_seconds += response.compute_seconds


@dataclasses.dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float
    compute_seconds: float


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    model: str
    vocabulary: str
    vocabulary_version: str
    prompt_hash: str
    strategy: StrategyName


@dataclasses.dataclass(frozen=True)
class TagResult:
    labels: tuple[Label, ...]
    usage: Usage
    stages: tuple[StageTiming, ...]
    version: VersionInfo
    # Stage-1 candidates (TagLLM) or proposed names (multi-option, open-ended).
    candidates: tuple[str, ...] = ()
    # Answer pieces that named nothing allowed.
    dropped_answers: int = 0
    # Yes/no questions asked about candidates, and how many passed their class threshold
    # (before min_score and max_labels trim the answer).
    verified: int = 0
    confirmed: int = 0


class Strategy(Protocol):
    name: StrategyName

    def tag(
        self, image: bytes, vocabulary: Vocabulary, options: StrategyOptions, mllm: MLLM
    ) -> TagResult: ...


class Run:
    """Book-keeping shared by the strategies while they tag one image."""

    def __init__(self, mllm: MLLM, vocabulary: Vocabulary, options: StrategyOptions) -> None:
        self.mllm = mllm
        self.vocabulary = vocabulary
        self.options = options
        self.prompts = Prompts.for_vocabulary(vocabulary)
        self.usage = Usage()
        self.stages: list[StageTiming] = []
        self.model_version = ""

    def ask(self, stage: str, request: MLLMRequest) -> MLLMResponse:
        start = time.perf_counter()
        response = self.mllm.run(request)
        if len(response.results) != len(request.prompts):
            raise RuntimeError(
                f"the model answered {len(response.results)} of {len(request.prompts)} prompts"
            )
        self.usage.add(response)
        self.stages.append(StageTiming(stage, time.perf_counter() - start, response.compute_seconds))
        self.model_version = response.model_version or self.model_version
        return response

    def result(
        self, labels: list[Label], candidates=(), dropped: int = 0, verified: int = 0, confirmed: int = 0
    ) -> TagResult:
        kept = [label for label in labels if label.score >= self.options.min_score]
        kept.sort(key=lambda label: (-label.score, label.name))
        if self.options.max_labels:
            kept = kept[: self.options.max_labels]
        version = VersionInfo(
            model=self.model_version or getattr(self.mllm, "version", ""),
            vocabulary=self.vocabulary.name,
            vocabulary_version=self.vocabulary.full_version,
            prompt_hash=self.prompts.hash,
            strategy=self.options.strategy,
        )
        return TagResult(
            tuple(kept),
            self.usage,
            tuple(self.stages),
            version,
            tuple(candidates),
            dropped,
            verified,
            confirmed,
        )
