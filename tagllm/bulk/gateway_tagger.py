"""The tagger `annotate` uses in production: the public gateway over gRPC."""

from __future__ import annotations

import grpc

from tagllm.bulk.annotate import TagFailure
from tagllm.bulk.sources import Item
from tagllm.client import TaggingClient, retry_delay
from tagllm.convert import result_from_proto
from tagllm.datasets.images import MAX_IMAGE_FILE_BYTES
from tagllm.files import InputFileError, read_bytes
from tagllm.strategies import TagResult
from tagllm.v1 import common_pb2

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
}


class GatewayTagger:
    def __init__(
        self,
        client: TaggingClient,
        vocabulary: str,
        options: common_pb2.StrategyOptions,
        timeout: float = 300.0,
    ) -> None:
        self.client = client
        self.vocabulary = vocabulary
        self.options = options
        self.timeout = timeout

    def __call__(self, item: Item, reference: list[str] | None) -> TagResult:
        try:
            content = read_bytes(item.path, MAX_IMAGE_FILE_BYTES)
        except InputFileError as exc:
            raise TagFailure("UNREADABLE", str(exc), retryable=False) from None
        try:
            response = self.client.tag(
                content,
                vocabulary=self.vocabulary,
                options=self.options,
                image_id=item.image_id,
                reference_labels=reference,
                timeout=self.timeout,
            )
        except grpc.RpcError as exc:
            raise TagFailure(
                exc.code().name,
                exc.details() or "",
                retryable=exc.code() in RETRYABLE,
                retry_after=retry_delay(exc),
            ) from None
        return result_from_proto(response.result)
