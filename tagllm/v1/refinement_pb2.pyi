from tagllm.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RefineRequest(_message.Message):
    __slots__ = ("image", "vocabulary", "vocabulary_yaml", "options", "reference_labels", "has_reference", "request_id", "image_sha256")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_YAML_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_LABELS_FIELD_NUMBER: _ClassVar[int]
    HAS_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    vocabulary: str
    vocabulary_yaml: str
    options: _common_pb2.StrategyOptions
    reference_labels: _containers.RepeatedScalarFieldContainer[str]
    has_reference: bool
    request_id: str
    image_sha256: str
    def __init__(self, image: _Optional[bytes] = ..., vocabulary: _Optional[str] = ..., vocabulary_yaml: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.StrategyOptions, _Mapping]] = ..., reference_labels: _Optional[_Iterable[str]] = ..., has_reference: _Optional[bool] = ..., request_id: _Optional[str] = ..., image_sha256: _Optional[str] = ...) -> None: ...

class RefineResponse(_message.Message):
    __slots__ = ("labels", "usage", "version", "stages", "candidates")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[_common_pb2.Label]
    usage: _common_pb2.Usage
    version: _common_pb2.VersionStamp
    stages: _containers.RepeatedCompositeFieldContainer[_common_pb2.StageTiming]
    candidates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, labels: _Optional[_Iterable[_Union[_common_pb2.Label, _Mapping]]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., version: _Optional[_Union[_common_pb2.VersionStamp, _Mapping]] = ..., stages: _Optional[_Iterable[_Union[_common_pb2.StageTiming, _Mapping]]] = ..., candidates: _Optional[_Iterable[str]] = ...) -> None: ...
