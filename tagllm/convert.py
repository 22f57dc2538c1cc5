"""Between protobuf messages and the library's types: the only module that knows both.

Converters come in pairs (`*_to_proto`, `*_from_proto`). Strategies map to the proto enum by
name (`tagllm` <-> `STRATEGY_TAGLLM`), so the registry is the one list of them.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from typing import Any

import numpy
from google.protobuf import json_format

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


def _same_fields(cls, message) -> dict:
    """The fields of dataclass `cls` read from `message`, whose fields have the same names."""
    return {field.name: getattr(message, field.name) for field in dataclasses.fields(cls)}


def result_to_proto(result: TagResult) -> common_pb2.TaggingResult:
    """What differs from the message: a verdict and strategy are enums there, and an absent
    verification score is 0."""
    return common_pb2.TaggingResult(
        labels=[
            common_pb2.Label(
                name=label.name,
                score=label.score,
                provenance=common_pb2.Provenance(
                    **{
                        **dataclasses.asdict(label.provenance),
                        "verdict": _VERDICT_TO_PROTO[label.provenance.verdict],
                        "verification_score": label.provenance.verification_score or 0.0,
                    }
                ),
            )
            for label in result.labels
        ],
        usage=common_pb2.Usage(**dataclasses.asdict(result.usage)),
        version=common_pb2.VersionStamp(
            **{**dataclasses.asdict(result.version), "strategy": strategy_to_proto(result.version.strategy)}
        ),
        stages=[common_pb2.StageTiming(**dataclasses.asdict(s)) for s in result.stages],
        candidates=result.candidates,
        verified=result.verified,
        confirmed=result.confirmed,
        dropped_answers=result.dropped_answers,
        verifications=[common_pb2.Verification(**dataclasses.asdict(v)) for v in result.verifications],
    )


def _float32(value: float) -> float:
    """A score of a `float` field as the shortest decimal that field holds (0.95, not
    0.949999988...): what the sender computed, to float32's precision, as protobuf's JSON writes it."""
    return float(str(numpy.float32(value)))


def result_from_proto(message: common_pb2.TaggingResult) -> TagResult:
    """Raises ValueError for a result naming no served strategy."""

    def provenance(message: common_pb2.Provenance) -> Provenance:
        verified = message.verdict != common_pb2.Provenance.VERDICT_UNSPECIFIED
        return Provenance(
            **{
                **_same_fields(Provenance, message),
                "verdict": _VERDICT_FROM_PROTO.get(message.verdict),
                "verification_score": _float32(message.verification_score) if verified else None,
            }
        )

    def verification(message: common_pb2.Verification) -> Verification:
        return Verification(
            message.name, _float32(message.yes_probability), _float32(message.score), message.confirmed
        )

    return TagResult(
        labels=tuple(
            Label(label.name, _float32(label.score), provenance(label.provenance)) for label in message.labels
        ),
        usage=Usage(**_same_fields(Usage, message.usage)),
        stages=tuple(StageTiming(**_same_fields(StageTiming, s)) for s in message.stages),
        version=VersionInfo(
            **{
                **_same_fields(VersionInfo, message.version),
                "strategy": strategy_from_proto(message.version.strategy),
            }
        ),
        candidates=tuple(message.candidates),
        dropped_answers=message.dropped_answers,
        verified=message.verified,
        confirmed=message.confirmed,
        verifications=tuple(verification(v) for v in message.verifications),
    )


def result_message_to_json(message: common_pb2.TaggingResult) -> dict[str, Any]:
    """The result's JSON mapping with the proto's field names, every field written: the shape of
    a `results.jsonl` line and of `tagllm tag --json`."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def result_message_from_json(data: dict[str, Any]) -> common_pb2.TaggingResult:
    """Raises ValueError for a mapping that is not a TaggingResult (an unknown field among them)."""
    try:
        return json_format.ParseDict(data, common_pb2.TaggingResult())
    except json_format.ParseError as exc:
        raise ValueError(str(exc)) from None


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
    durations = [message.seconds, result.usage.model_compute_seconds, *(s.seconds for s in result.stages)]
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
    scores = [p for v in result.verifications for p in (v.yes_probability, v.score)]
    if not all(0.0 <= p <= 1.0 for p in scores):
        raise ValueError("verification scores must be in [0, 1]")
    return TaggedImage(
        result=result,
        vocabulary_size=message.vocabulary_size,
        seconds=message.seconds,
        reference=reference_from_proto(message),
    )
