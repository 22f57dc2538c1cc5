"""Between protobuf messages and the library's types: the only module that knows both.

Converters come in pairs (`*_to_proto`, `*_from_proto`). Strategies map to the proto enum by
name (`tagllm` <-> `STRATEGY_TAGLLM`), so the registry is the one list of them.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence

from tagllm.internal.v1 import metrics_pb2
from tagllm.metrics.tagging import TaggedImage
from tagllm.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Label,
    Provenance,
    StageTiming,
    StrategyOptions,
    TagResult,
    Usage,
    Verdict,
    Verification,
    VersionInfo,
)
from tagllm.v1 import common_pb2
from tagllm.vocab.model import MAX_CATEGORIES, MAX_NAME_CHARS, VOCABULARY_NAME

_VERDICT_TO_PROTO = {
    None: common_pb2.Provenance.VERDICT_UNSPECIFIED,
    Verdict.CONFIRMED: common_pb2.Provenance.VERDICT_CONFIRMED,
}
_VERDICT_FROM_PROTO = {v: k for k, v in _VERDICT_TO_PROTO.items()}


def strategy_to_proto(name: str) -> common_pb2.Strategy:
    return typing.cast(common_pb2.Strategy, common_pb2.Strategy.Value(f"STRATEGY_{name.upper()}"))


def strategy_from_proto(value: int) -> str:
    """The registered strategy an enum value names (UNSPECIFIED: the default); ValueError if none."""
    if value == common_pb2.STRATEGY_UNSPECIFIED:
        return DEFAULT_STRATEGY
    try:
        name = common_pb2.Strategy.Name(value).removeprefix("STRATEGY_").lower()
    except ValueError:
        raise ValueError(f"unknown strategy {value}") from None
    if name not in STRATEGIES:
        raise ValueError(f"strategy {name!r} is not served here")
    return name


def strategy_options(
    strategy: str = DEFAULT_STRATEGY,
    grouping: bool | None = None,
    concept_knowledge: bool | None = None,
    min_score: float = 0.0,
    max_labels: int = 0,
    max_answer_tokens: int = 0,
    prompt_style: str = "",
    partition: str = "",
) -> common_pb2.StrategyOptions:
    """The request's options message; None leaves a switch at the server's default."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    options = common_pb2.StrategyOptions(
        strategy=strategy_to_proto(strategy),
        min_score=min_score,
        max_labels=max_labels,
        max_answer_tokens=max_answer_tokens,
        prompt_style=prompt_style,
        partition=partition,
    )
    if grouping is not None:
        options.grouping = grouping
    if concept_knowledge is not None:
        options.concept_knowledge = concept_knowledge
    return options


def options_to_proto(options: StrategyOptions) -> common_pb2.StrategyOptions:
    return strategy_options(
        options.strategy,
        grouping=options.grouping,
        concept_knowledge=options.concept_knowledge,
        min_score=options.min_score,
        max_labels=options.max_labels,
        max_answer_tokens=options.max_answer_tokens,
        prompt_style=options.prompt_style,
        partition=options.partition,
    )


def options_from_proto(message: common_pb2.StrategyOptions) -> StrategyOptions:
    """Raises ValueError for values out of range (the caller answers INVALID_ARGUMENT)."""
    defaults = StrategyOptions()
    return StrategyOptions(
        strategy=strategy_from_proto(message.strategy),
        grouping=message.grouping if message.HasField("grouping") else defaults.grouping,
        concept_knowledge=message.concept_knowledge if message.HasField("concept_knowledge") else None,
        min_score=message.min_score,
        max_labels=message.max_labels,
        max_answer_tokens=message.max_answer_tokens or defaults.max_answer_tokens,
        prompt_style=message.prompt_style,
        partition=message.partition or defaults.partition,
    )


def result_to_proto(result: TagResult) -> common_pb2.TaggingResult:
    return common_pb2.TaggingResult(
        labels=[
            common_pb2.Label(
                name=label.name,
                score=label.score,
                provenance=common_pb2.Provenance(
                    group=label.provenance.group,
                    proposed=label.provenance.proposed,
                    verdict=_VERDICT_TO_PROTO[label.provenance.verdict],
                    verification_score=label.provenance.verification_score or 0.0,
                    reviewer=label.provenance.reviewer,
                ),
            )
            for label in result.labels
        ],
        usage=common_pb2.Usage(
            mllm_calls=result.usage.calls,
            mllm_requests=result.usage.requests,
            prompt_tokens=result.usage.prompt_tokens,
            generated_tokens=result.usage.generated_tokens,
            model_compute_seconds=result.usage.compute_seconds,
        ),
        version=common_pb2.VersionStamp(
            model=result.version.model,
            vocabulary=result.version.vocabulary,
            vocabulary_version=result.version.vocabulary_version,
            prompt_template_hash=result.version.prompt_hash,
            strategy=strategy_to_proto(result.version.strategy),
        ),
        stages=[
            common_pb2.StageTiming(stage=s.stage, seconds=s.seconds, model_compute_seconds=s.compute_seconds)
            for s in result.stages
        ],
        candidates=result.candidates,
        verified=result.verified,
        confirmed=result.confirmed,
        dropped_answers=result.dropped_answers,
        verifications=[
            common_pb2.Verification(
                name=v.name, yes_probability=v.probability, score=v.score, confirmed=v.confirmed
            )
            for v in result.verifications
        ],
    )


def result_from_proto(message: common_pb2.TaggingResult) -> TagResult:
    """Raises ValueError for a result naming no served strategy."""
    usage, version = message.usage, message.version
    return TagResult(
        labels=tuple(
            Label(
                label.name,
                label.score,
                Provenance(
                    group=label.provenance.group,
                    proposed=label.provenance.proposed,
                    verdict=_VERDICT_FROM_PROTO.get(label.provenance.verdict),
                    verification_score=(
                        label.provenance.verification_score
                        if label.provenance.verdict != common_pb2.Provenance.VERDICT_UNSPECIFIED
                        else None
                    ),
                    reviewer=label.provenance.reviewer,
                ),
            )
            for label in message.labels
        ),
        usage=Usage(
            calls=usage.mllm_calls,
            requests=usage.mllm_requests,
            prompt_tokens=usage.prompt_tokens,
            generated_tokens=usage.generated_tokens,
            compute_seconds=usage.model_compute_seconds,
        ),
        stages=tuple(StageTiming(s.stage, s.seconds, s.model_compute_seconds) for s in message.stages),
        version=VersionInfo(
            model=version.model,
            vocabulary=version.vocabulary,
            vocabulary_version=version.vocabulary_version,
            prompt_hash=version.prompt_template_hash,
            strategy=strategy_from_proto(version.strategy),
        ),
        candidates=tuple(message.candidates),
        dropped_answers=message.dropped_answers,
        verified=message.verified,
        confirmed=message.confirmed,
        verifications=tuple(
            Verification(v.name, v.yes_probability, v.score, v.confirmed) for v in message.verifications
        ),
    )


def reference_to_proto(labels: Sequence[str] | None) -> common_pb2.ReferenceLabels | None:
    """None (no human labels known) stays None: the field is then left unset."""
    return None if labels is None else common_pb2.ReferenceLabels(labels=labels)


def reference_from_proto(message, field: str = "reference") -> tuple[str, ...] | None:
    """The human labels in `message.<field>`, or None when the field is unset."""
    return tuple(getattr(message, field).labels) if message.HasField(field) else None


def record_to_proto(
    result: common_pb2.TaggingResult,
    vocabulary_size: int,
    seconds: float,
    reference: common_pb2.ReferenceLabels | None,
    request_id: str,
) -> metrics_pb2.TaggingRecord:
    """The metrics record of a result, which is sent exactly as the refiner answered it."""
    return metrics_pb2.TaggingRecord(
        result=result,
        vocabulary_size=vocabulary_size,
        seconds=seconds,
        reference=reference,
        request_id=request_id,
    )


def record_from_proto(message: metrics_pb2.TaggingRecord) -> TaggedImage:
    """Raises ValueError for a record that cannot be counted: unknown strategy, a vocabulary name
    or label that no vocabulary could have, more labels than categories, durations that are
    negative or not finite. The metrics service trusts no sender."""
    result = result_from_proto(message.result)
    if not VOCABULARY_NAME.match(result.version.vocabulary):
        raise ValueError("record names no valid vocabulary")
    if not 0 < message.vocabulary_size <= MAX_CATEGORIES:
        raise ValueError(f"vocabulary_size must be in [1, {MAX_CATEGORIES}]")
    durations = [message.seconds, result.usage.compute_seconds, *(s.seconds for s in result.stages)]
    if not all(math.isfinite(d) and d >= 0 for d in durations):
        raise ValueError("durations must be finite and not negative")
    names = [label.name for label in result.labels] + list(result.candidates) + list(message.reference.labels)
    names += [v.name for v in result.verifications]
    if any(len(name) > MAX_NAME_CHARS or not name.isprintable() for name in names):
        raise ValueError(f"label names must be printable and at most {MAX_NAME_CHARS} characters")
    # Reference labels are a set: repeats count once.
    sizes = (
        len(result.labels),
        len(result.candidates),
        len(set(message.reference.labels)),
        len(result.verifications),
    )
    if max(sizes) > message.vocabulary_size:
        raise ValueError("more labels than the vocabulary has categories")
    scores = [p for v in result.verifications for p in (v.probability, v.score)]
    if not all(0.0 <= p <= 1.0 for p in scores):
        raise ValueError("verification scores must be in [0, 1]")
    return TaggedImage(
        result=result,
        vocabulary_size=message.vocabulary_size,
        seconds=message.seconds,
        reference=reference_from_proto(message),
    )
