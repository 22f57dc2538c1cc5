from google.rpc import status_pb2 as _status_pb2
from tagllm.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Image(_message.Message):
    __slots__ = ("content", "id")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    id: str
    def __init__(self, content: _Optional[bytes] = ..., id: _Optional[str] = ...) -> None: ...

class TagRequest(_message.Message):
    __slots__ = ("image", "vocabulary", "options", "reference")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    vocabulary: str
    options: _common_pb2.StrategyOptions
    reference: _common_pb2.ReferenceLabels
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., vocabulary: _Optional[str] = ..., options: _Optional[_Union[_common_pb2.StrategyOptions, _Mapping]] = ..., reference: _Optional[_Union[_common_pb2.ReferenceLabels, _Mapping]] = ...) -> None: ...

class TagResponse(_message.Message):
    __slots__ = ("result", "image_id", "request_id", "cached")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    result: _common_pb2.TaggingResult
    image_id: str
    request_id: str
    cached: bool
    def __init__(self, result: _Optional[_Union[_common_pb2.TaggingResult, _Mapping]] = ..., image_id: _Optional[str] = ..., request_id: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class BatchTagRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[TagRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[TagRequest, _Mapping]]] = ...) -> None: ...

class BatchTagResult(_message.Message):
    __slots__ = ("status", "response")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    response: TagResponse
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., response: _Optional[_Union[TagResponse, _Mapping]] = ...) -> None: ...

class BatchTagResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchTagResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchTagResult, _Mapping]]] = ...) -> None: ...

class StreamTagResponse(_message.Message):
    __slots__ = ("image_id", "status", "response")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    status: _status_pb2.Status
    response: TagResponse
    def __init__(self, image_id: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., response: _Optional[_Union[TagResponse, _Mapping]] = ...) -> None: ...

class ListVocabulariesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VocabularyInfo(_message.Message):
    __slots__ = ("name", "version", "categories", "groups", "builtin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    categories: int
    groups: int
    builtin: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., categories: _Optional[int] = ..., groups: _Optional[int] = ..., builtin: _Optional[bool] = ...) -> None: ...

class ListVocabulariesResponse(_message.Message):
    __slots__ = ("vocabularies",)
    VOCABULARIES_FIELD_NUMBER: _ClassVar[int]
    vocabularies: _containers.RepeatedCompositeFieldContainer[VocabularyInfo]
    def __init__(self, vocabularies: _Optional[_Iterable[_Union[VocabularyInfo, _Mapping]]] = ...) -> None: ...

class RegisterVocabularyRequest(_message.Message):
    __slots__ = ("yaml", "replace")
    YAML_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    replace: bool
    def __init__(self, yaml: _Optional[str] = ..., replace: _Optional[bool] = ...) -> None: ...

class RegisterVocabularyResponse(_message.Message):
    __slots__ = ("vocabulary",)
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    vocabulary: VocabularyInfo
    def __init__(self, vocabulary: _Optional[_Union[VocabularyInfo, _Mapping]] = ...) -> None: ...
