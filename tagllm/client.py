"""A small client of the public TaggingService, for the CLI and for Python users."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import json_format

from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc

STRATEGIES = {
    "tagllm": common_pb2.STRATEGY_TAGLLM,
    "multi_option": common_pb2.STRATEGY_MULTI_OPTION,
    "binary": common_pb2.STRATEGY_BINARY,
    "open_ended": common_pb2.STRATEGY_OPEN_ENDED,
}


def strategy_options(
    strategy: str = "tagllm",
    grouping: bool | None = None,
    concept_knowledge: bool | None = None,
    min_score: float = 0.0,
    max_labels: int = 0,
) -> common_pb2.StrategyOptions:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    options = common_pb2.StrategyOptions(
        strategy=STRATEGIES[strategy], min_score=min_score, max_labels=max_labels
    )
    if grouping is not None:
        options.grouping = grouping
    if concept_knowledge is not None:
        options.concept_knowledge = concept_knowledge
    return options


class TaggingClient:
    def __init__(self, address: str, api_key: str | None = None, max_message_bytes: int = 64 * 1024 * 1024):
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self.stub = tagging_pb2_grpc.TaggingServiceStub(self.channel)
        self.metadata = [("x-api-key", api_key)] if api_key else []

    def tag(
        self,
        image: bytes | Path,
        vocabulary: str = "coco",
        options: common_pb2.StrategyOptions | None = None,
        image_id: str = "",
        reference_labels: list[str] | None = None,
        timeout: float | None = 300.0,
    ) -> tagging_pb2.TagResponse:
        """`reference_labels` (human labels; [] means none of the vocabulary) feed agreement metrics."""
        content = Path(image).read_bytes() if isinstance(image, Path) else image
        request = tagging_pb2.TagRequest(
            image=tagging_pb2.Image(content=content, id=image_id),
            vocabulary=vocabulary,
            options=options or strategy_options(),
            reference_labels=reference_labels or [],
            has_reference=reference_labels is not None,
        )
        return self.stub.Tag(request, timeout=timeout, metadata=self.metadata)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> TaggingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def response_to_dict(response) -> dict:
    return json_format.MessageToDict(response, preserving_proto_field_name=True)
