from tagllm.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaggingRecord(_message.Message):
    __slots__ = ("strategy", "vocabulary", "vocabulary_size", "seconds", "stages", "usage", "candidates", "labels", "reference_labels", "has_reference", "verified", "confirmed", "model", "request_id")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_LABELS_FIELD_NUMBER: _ClassVar[int]
    HAS_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    strategy: _common_pb2.Strategy
    vocabulary: str
    vocabulary_size: int
    seconds: float
    stages: _containers.RepeatedCompositeFieldContainer[_common_pb2.StageTiming]
    usage: _common_pb2.Usage
    candidates: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[str]
    reference_labels: _containers.RepeatedScalarFieldContainer[str]
    has_reference: bool
    verified: int
    confirmed: int
    model: str
    request_id: str
    def __init__(self, strategy: _Optional[_Union[_common_pb2.Strategy, str]] = ..., vocabulary: _Optional[str] = ..., vocabulary_size: _Optional[int] = ..., seconds: _Optional[float] = ..., stages: _Optional[_Iterable[_Union[_common_pb2.StageTiming, _Mapping]]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., candidates: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[str]] = ..., reference_labels: _Optional[_Iterable[str]] = ..., has_reference: _Optional[bool] = ..., verified: _Optional[int] = ..., confirmed: _Optional[int] = ..., model: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[TaggingRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[TaggingRecord, _Mapping]]] = ...) -> None: ...

class RecordResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...
