"""Between protobuf messages and the library's types; the only place that knows both."""

from __future__ import annotations

from tagllm.metrics import ImageRecord
from tagllm.strategies import Provenance, StrategyName, StrategyOptions, TagResult, Verdict
from tagllm.v1 import common_pb2, metrics_pb2

STRATEGY_TO_PROTO = {
    StrategyName.OPEN_ENDED: common_pb2.STRATEGY_OPEN_ENDED,
    StrategyName.MULTI_OPTION: common_pb2.STRATEGY_MULTI_OPTION,
    StrategyName.BINARY: common_pb2.STRATEGY_BINARY,
    StrategyName.TAGLLM: common_pb2.STRATEGY_TAGLLM,
}
STRATEGY_FROM_PROTO = {v: k for k, v in STRATEGY_TO_PROTO.items()}
_VERDICT_TO_PROTO = {
    None: common_pb2.Provenance.VERDICT_UNSPECIFIED,
    Verdict.CONFIRMED: common_pb2.Provenance.VERDICT_CONFIRMED,
    Verdict.REJECTED: common_pb2.Provenance.VERDICT_REJECTED,
}


def options_from_proto(message: common_pb2.StrategyOptions) -> StrategyOptions:
    """Raises ValueError for values out of range (the caller answers INVALID_ARGUMENT)."""
    if message.strategy == common_pb2.STRATEGY_UNSPECIFIED:
        strategy = StrategyName.TAGLLM
    elif message.strategy in STRATEGY_FROM_PROTO:
        strategy = STRATEGY_FROM_PROTO[message.strategy]
    else:
        raise ValueError(f"unknown strategy {message.strategy}")
    return StrategyOptions(
        strategy=strategy,
        grouping=message.grouping if message.HasField("grouping") else True,
        concept_knowledge=message.concept_knowledge if message.HasField("concept_knowledge") else True,
        min_score=message.min_score,
        max_labels=message.max_labels,
    )


def options_to_proto(options: StrategyOptions) -> common_pb2.StrategyOptions:
    return common_pb2.StrategyOptions(
        strategy=STRATEGY_TO_PROTO[options.strategy],
        grouping=options.grouping,
        concept_knowledge=options.concept_knowledge,
        min_score=options.min_score,
        max_labels=options.max_labels,
    )


def provenance_to_proto(provenance: Provenance) -> common_pb2.Provenance:
    return common_pb2.Provenance(
        group=provenance.group,
        proposed=provenance.proposed,
        verdict=_VERDICT_TO_PROTO[provenance.verdict],
        verification_score=provenance.verification_score or 0.0,
    )


def result_parts(result: TagResult) -> dict:
    """The fields a RefineResponse (and so a TagResponse) carries for a TagResult."""
    return {
        "labels": [
            common_pb2.Label(
                name=label.name, score=label.score, provenance=provenance_to_proto(label.provenance)
            )
            for label in result.labels
        ],
        "usage": common_pb2.Usage(
            mllm_calls=result.usage.calls,
            mllm_requests=result.usage.requests,
            prompt_tokens=result.usage.prompt_tokens,
            generated_tokens=result.usage.generated_tokens,
            model_compute_seconds=result.usage.compute_seconds,
        ),
        "version": common_pb2.VersionStamp(
            model=result.version.model,
            vocabulary=result.version.vocabulary,
            vocabulary_version=result.version.vocabulary_version,
            prompt_template_hash=result.version.prompt_hash,
            strategy=STRATEGY_TO_PROTO[result.version.strategy],
        ),
        "stages": [
            common_pb2.StageTiming(stage=s.stage, seconds=s.seconds, model_compute_seconds=s.compute_seconds)
            for s in result.stages
        ],
        "candidates": list(result.candidates),
    }


def record_to_proto(
    result: TagResult,
    parts: dict,
    vocabulary_size: int,
    seconds: float,
    reference: list[str] | None,
    request_id: str,
) -> metrics_pb2.TaggingRecord:
    """The metrics record of a result; `parts` are its `result_parts`, built once per request."""
    return metrics_pb2.TaggingRecord(
        strategy=STRATEGY_TO_PROTO[result.version.strategy],
        vocabulary=result.version.vocabulary,
        vocabulary_size=vocabulary_size,
        seconds=seconds,
        stages=parts["stages"],
        usage=parts["usage"],
        candidates=result.candidates,
        labels=[label.name for label in result.labels],
        reference_labels=reference or [],
        has_reference=reference is not None,
        verified=result.verified,
        confirmed=result.confirmed,
        model=result.version.model,
        request_id=request_id,
    )


def record_from_proto(message: metrics_pb2.TaggingRecord) -> ImageRecord:
    """Raises ValueError for a record that cannot be counted."""
    if message.strategy not in STRATEGY_FROM_PROTO:
        raise ValueError(f"unknown strategy {message.strategy}")
    if not message.vocabulary:
        raise ValueError("record names no vocabulary")
    if message.seconds < 0 or message.usage.model_compute_seconds < 0:
        raise ValueError("negative durations")
    return ImageRecord(
        strategy=STRATEGY_FROM_PROTO[message.strategy].value,
        vocabulary=message.vocabulary,
        vocabulary_size=message.vocabulary_size,
        seconds=message.seconds,
        stages=tuple((s.stage, s.seconds) for s in message.stages),
        mllm_calls=message.usage.mllm_calls,
        mllm_requests=message.usage.mllm_requests,
        prompt_tokens=message.usage.prompt_tokens,
        generated_tokens=message.usage.generated_tokens,
        compute_seconds=message.usage.model_compute_seconds,
        candidates=tuple(message.candidates),
        labels=tuple(message.labels),
        reference=tuple(message.reference_labels) if message.has_reference else None,
        verified=message.verified,
        confirmed=message.confirmed,
    )
