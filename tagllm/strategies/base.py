"""What every strategy takes and returns, and the registry of strategies.

A strategy is a class with a `name` and a `tag(run, image)` method, registered with
`@register`. Everything that lists strategies (the gRPC enum mapping, CLI choices, client
helpers, metric labels) reads `STRATEGIES`; the proto enum must name each one as
`STRATEGY_<NAME>` (a test checks that they agree).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from tagllm.mllm.contract import MAX_NEW_TOKENS as MAX_ANSWER_TOKENS
from tagllm.mllm.contract import MLLM, NO_CONTEXT, CallContext, MLLMRequest, MLLMResponse
from tagllm.prompts import Prompts
from tagllm.vocab.model import Vocabulary
from tagllm.vocab.partitions import DEFAULT_PARTITION, PARTITIONS

DEFAULT_STRATEGY = "tagllm"


class Verdict(enum.StrEnum):
    # Only confirmed candidates become labels; a label without verification has no verdict.
    CONFIRMED = "confirmed"


@dataclasses.dataclass(frozen=True)
class StrategyOptions:
    """Per-request choices; together they reach every row of the paper's ablation."""

    strategy: str = DEFAULT_STRATEGY
    # TagLLM stage 1 per group (True) or with one whole-vocabulary prompt (False).
    grouping: bool = True
    # Yes/no questions with concept knowledge (CAD) or about the bare name; None: the
    # strategy's own default (tagllm: with, binary: without, as the paper's BP).
    concept_knowledge: bool | None = None
    # Prompt wording ('' = the vocabulary's default style, itself `careful` unless it says).
    prompt_style: str = ""
    # Which partition makes TagLLM's groups: coop, discp or randp (tagllm.vocab.partitions).
    partition: str = DEFAULT_PARTITION
    # Drop labels scoring below this.
    min_score: float = 0.0
    # Keep at most this many labels (0: all).
    max_labels: int = 0
    # Cap on generated tokens per multi-option or open-ended answer.
    max_answer_tokens: int = MAX_ANSWER_TOKENS

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy[:40]!r}; known: {', '.join(STRATEGIES)}")
        if self.partition not in PARTITIONS:
            raise ValueError(f"unknown partition {self.partition[:40]!r}; known: {', '.join(PARTITIONS)}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.max_labels < 0:
            raise ValueError("max_labels must not be negative")
        if not 1 <= self.max_answer_tokens <= MAX_ANSWER_TOKENS:
            raise ValueError(f"max_answer_tokens must be in [1, {MAX_ANSWER_TOKENS}]")


@dataclasses.dataclass(frozen=True)
class Provenance:
    group: str = ""
    proposed: bool = False
    verdict: Verdict | None = None
    verification_score: float | None = None
    # Who decided the label where a person did (a review merged into a run): then the label is
    # theirs, whatever the model said.
    reviewer: str = ""


@dataclasses.dataclass(frozen=True)
class Verification:
    """One yes/no question about a candidate, whether the answer kept it or not: what calibration
    and its error are measured on."""

    name: str
    # The model's P(yes), normalised over the yes and no tokens.
    yes_probability: float
    # What is served: the category's calibration applied to `yes_probability` (equal without one).
    score: float
    # Whether `score` reached the category's threshold.
    confirmed: bool


@dataclasses.dataclass(frozen=True)
class Label:
    name: str
    score: float
    provenance: Provenance = Provenance()


@dataclasses.dataclass
class Usage:
    # Prompts answered, and requests sent to the model server (one per stage).
    mllm_calls: int = 0
    mllm_requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    model_compute_seconds: float = 0.0

    def add(self, response: MLLMResponse) -> None:
        self.mllm_calls += len(response.results)
        self.mllm_requests += 1
        self.prompt_tokens += sum(r.prompt_tokens for r in response.results)
        self.generated_tokens += sum(r.generated_tokens for r in response.results)
        self.model_compute_seconds += response.compute_seconds


@dataclasses.dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float
    model_compute_seconds: float


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    model: str
    vocabulary: str
    vocabulary_version: str
    prompt_template_hash: str
    # As the registry spells it ("tagllm"); the proto's enum value is STRATEGY_<NAME>.
    strategy: str


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
    # Every yes/no answer, kept or dropped, in the order asked. Labels no question was asked
    # about (open-ended, multi-option) have none: their score 1 says "proposed", not a probability.
    verifications: tuple[Verification, ...] = ()


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def stages(self) -> tuple[str, ...]:
        """Names of the stages it may time (`Run.ask(stage, ...)`), for metrics that exist up front."""
        ...

    @property
    def concept_knowledge(self) -> bool:
        """Whether its yes/no questions carry concept knowledge when the request does not say."""
        ...

    def tag(self, run: Run, image: bytes) -> TagResult: ...


# Every registered strategy by name, in registration order.
STRATEGIES: dict[str, Strategy] = {}
S = TypeVar("S", bound=Callable[[], Strategy])


def register(cls: S) -> S:
    """Class decorator: makes the strategy known to every consumer of `STRATEGIES`."""
    instance = cls()
    if instance.name in STRATEGIES:
        raise ValueError(f"strategy {instance.name!r} is registered twice")
    STRATEGIES[instance.name] = instance
    return cls


class Run:
    """Book-keeping shared by the strategies while they tag one image."""

    def __init__(
        self, mllm: MLLM, vocabulary: Vocabulary, options: StrategyOptions, context: CallContext = NO_CONTEXT
    ) -> None:
        self.mllm = mllm
        self.context = context
        self.vocabulary = vocabulary
        self.options = options
        self.prompts = Prompts.for_vocabulary(vocabulary, options.prompt_style)
        default = STRATEGIES[options.strategy].concept_knowledge
        self.concept_knowledge = default if options.concept_knowledge is None else options.concept_knowledge
        self.usage = Usage()
        self.stages: list[StageTiming] = []
        self.model_version = ""

    def ask(self, stage: str, request: MLLMRequest) -> MLLMResponse:
        if stage not in STRATEGIES[self.options.strategy].stages:
            raise ValueError(f"stage {stage!r} is not declared by strategy {self.options.strategy!r}")
        self.context.check()  # between stages: no second stage for a caller that has gone
        start = time.perf_counter()
        response = self.mllm.run(request, self.context)
        if len(response.results) != len(request.prompts):
            raise RuntimeError(
                f"the model answered {len(response.results)} of {len(request.prompts)} prompts"
            )
        self.usage.add(response)
        self.stages.append(StageTiming(stage, time.perf_counter() - start, response.compute_seconds))
        self.model_version = response.model_version or self.model_version
        return response

    def result(
        self,
        labels: list[Label],
        candidates=(),
        dropped: int = 0,
        verifications: tuple[Verification, ...] = (),
    ) -> TagResult:
        kept = [label for label in labels if label.score >= self.options.min_score]
        kept.sort(key=lambda label: (-label.score, label.name))
        if self.options.max_labels:
            kept = kept[: self.options.max_labels]
        version = VersionInfo(
            model=self.model_version or getattr(self.mllm, "version", ""),
            vocabulary=self.vocabulary.name,
            vocabulary_version=self.vocabulary.full_version,
            prompt_template_hash=self.prompts.hash,
            strategy=self.options.strategy,
        )
        return TagResult(
            tuple(kept),
            self.usage,
            tuple(self.stages),
            version,
            tuple(candidates),
            dropped,
            verified=len(verifications),
            confirmed=sum(v.confirmed for v in verifications),
            verifications=verifications,
        )


def check_options(options: StrategyOptions, vocabulary: Vocabulary) -> None:
    """Raises ValueError when the options do not fit the vocabulary (an unknown prompt style)."""
    Prompts.for_vocabulary(vocabulary, options.prompt_style)


def tag_image(
    image: bytes,
    vocabulary: Vocabulary,
    options: StrategyOptions,
    mllm: MLLM,
    context: CallContext = NO_CONTEXT,
) -> TagResult:
    """Tag one encoded image with the strategy the options name."""
    return STRATEGIES[options.strategy].tag(Run(mllm, vocabulary, options, context), image)
