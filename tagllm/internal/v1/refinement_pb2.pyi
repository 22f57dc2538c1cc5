from tagllm.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RefineRequest(_message.Message):
    __slots__ = ("image", "vocabulary", "vocabulary_yaml", "options", "reference", "request_id")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_YAML_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    vocabulary: str
    vocabulary_yaml: str
    options: _common_pb2.StrategyOptions
    reference: _common_pb2.ReferenceLabels
    request_id: str
    def __init__(self, image: _Optional[bytes] = ..., vocabulary: _Optional[str] = ..., vocabulary_yaml: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.StrategyOptions, _Mapping]] = ..., reference: _Optional[_Union[_common_pb2.ReferenceLabels, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RefineResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _common_pb2.TaggingResult
    def __init__(self, result: _Optional[_Union[_common_pb2.TaggingResult, _Mapping]] = ...) -> None: ...
