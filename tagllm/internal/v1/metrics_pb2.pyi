from tagllm.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaggingRecord(_message.Message):
    __slots__ = ("result", "vocabulary_size", "seconds", "reference", "request_id")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    result: _common_pb2.TaggingResult
    vocabulary_size: int
    seconds: float
    reference: _common_pb2.ReferenceLabels
    request_id: str
    def __init__(self, result: _Optional[_Union[_common_pb2.TaggingResult, _Mapping]] = ..., vocabulary_size: _Optional[int] = ..., seconds: _Optional[float] = ..., reference: _Optional[_Union[_common_pb2.ReferenceLabels, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

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
