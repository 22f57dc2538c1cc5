from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_OPEN_ENDED: _ClassVar[Strategy]
    STRATEGY_MULTI_OPTION: _ClassVar[Strategy]
    STRATEGY_BINARY: _ClassVar[Strategy]
    STRATEGY_TAGLLM: _ClassVar[Strategy]
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_OPEN_ENDED: Strategy
STRATEGY_MULTI_OPTION: Strategy
STRATEGY_BINARY: Strategy
STRATEGY_TAGLLM: Strategy

class StrategyOptions(_message.Message):
    __slots__ = ("strategy", "grouping", "concept_knowledge", "min_score", "max_labels", "max_answer_tokens", "prompt_style", "partition")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    GROUPING_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_KNOWLEDGE_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_ANSWER_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_STYLE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    grouping: bool
    concept_knowledge: bool
    min_score: float
    max_labels: int
    max_answer_tokens: int
    prompt_style: str
    partition: str
    def __init__(self, strategy: _Optional[_Union[Strategy, str]] = ..., grouping: _Optional[bool] = ..., concept_knowledge: _Optional[bool] = ..., min_score: _Optional[float] = ..., max_labels: _Optional[int] = ..., max_answer_tokens: _Optional[int] = ..., prompt_style: _Optional[str] = ..., partition: _Optional[str] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("group", "proposed", "verdict", "verification_score", "reviewer")
    class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VERDICT_UNSPECIFIED: _ClassVar[Provenance.Verdict]
        VERDICT_CONFIRMED: _ClassVar[Provenance.Verdict]
    VERDICT_UNSPECIFIED: Provenance.Verdict
    VERDICT_CONFIRMED: Provenance.Verdict
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_SCORE_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    group: str
    proposed: bool
    verdict: Provenance.Verdict
    verification_score: float
    reviewer: str
    def __init__(self, group: _Optional[str] = ..., proposed: _Optional[bool] = ..., verdict: _Optional[_Union[Provenance.Verdict, str]] = ..., verification_score: _Optional[float] = ..., reviewer: _Optional[str] = ...) -> None: ...

class Label(_message.Message):
    __slots__ = ("name", "score", "provenance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: float
    provenance: Provenance
    def __init__(self, name: _Optional[str] = ..., score: _Optional[float] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("mllm_calls", "mllm_requests", "prompt_tokens", "generated_tokens", "model_compute_seconds")
    MLLM_CALLS_FIELD_NUMBER: _ClassVar[int]
    MLLM_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    mllm_calls: int
    mllm_requests: int
    prompt_tokens: int
    generated_tokens: int
    model_compute_seconds: float
    def __init__(self, mllm_calls: _Optional[int] = ..., mllm_requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., generated_tokens: _Optional[int] = ..., model_compute_seconds: _Optional[float] = ...) -> None: ...

class VersionStamp(_message.Message):
    __slots__ = ("model", "vocabulary", "vocabulary_version", "prompt_template_hash", "strategy")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_HASH_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    model: str
    vocabulary: str
    vocabulary_version: str
    prompt_template_hash: str
    strategy: Strategy
    def __init__(self, model: _Optional[str] = ..., vocabulary: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., prompt_template_hash: _Optional[str] = ..., strategy: _Optional[_Union[Strategy, str]] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "seconds", "model_compute_seconds")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    seconds: float
    model_compute_seconds: float
    def __init__(self, stage: _Optional[str] = ..., seconds: _Optional[float] = ..., model_compute_seconds: _Optional[float] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("name", "yes_probability", "score", "confirmed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    YES_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    name: str
    yes_probability: float
    score: float
    confirmed: bool
    def __init__(self, name: _Optional[str] = ..., yes_probability: _Optional[float] = ..., score: _Optional[float] = ..., confirmed: _Optional[bool] = ...) -> None: ...

class TaggingResult(_message.Message):
    __slots__ = ("labels", "usage", "version", "stages", "candidates", "verified", "confirmed", "dropped_answers", "verifications")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    usage: Usage
    version: VersionStamp
    stages: _containers.RepeatedCompositeFieldContainer[StageTiming]
    candidates: _containers.RepeatedScalarFieldContainer[str]
    verified: int
    confirmed: int
    dropped_answers: int
    verifications: _containers.RepeatedCompositeFieldContainer[Verification]
    def __init__(self, labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., version: _Optional[_Union[VersionStamp, _Mapping]] = ..., stages: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., candidates: _Optional[_Iterable[str]] = ..., verified: _Optional[int] = ..., confirmed: _Optional[int] = ..., dropped_answers: _Optional[int] = ..., verifications: _Optional[_Iterable[_Union[Verification, _Mapping]]] = ...) -> None: ...

class ReferenceLabels(_message.Message):
    __slots__ = ("labels",)
    LABELS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, labels: _Optional[_Iterable[str]] = ...) -> None: ...
