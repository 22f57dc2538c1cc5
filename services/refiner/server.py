"""Refiner: runs a tagging strategy for one image against the model server (stateless)."""

from __future__ import annotations

import dataclasses
import functools
import time

import grpc
from prometheus_client import CollectorRegistry

from services.common.convert import options_from_proto, record_to_proto, result_parts
from services.common.grpc_server import GrpcServer, abort_with, run_service
from services.common.logs import get_logger
from services.common.settings import GrpcSettings
from services.refiner.metrics_sender import MetricsSender
from services.refiner.triton_mllm import TritonMLLM
from tagllm.mllm.contract import ErrorKind, MLLMError
from tagllm.strategies import tag_image
from tagllm.v1 import refinement_pb2, refinement_pb2_grpc
from tagllm.vocab import Vocabulary, VocabularyError, builtin_vocabulary, parse_vocabulary

SERVICE = "tagllm.v1.RefinementService"
log = get_logger("refiner")
_STATUS_OF = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


@dataclasses.dataclass(frozen=True)
class RefinerSettings(GrpcSettings):
    port: int = 50052
    # Comma-separated Triton replicas; all requests about one image go to the same one.
    triton_url: str = "127.0.0.1:8001"
    # Cap on one model-server call; a shorter client deadline wins.
    triton_timeout_seconds: float = 300.0
    # Where tagging records go; empty: nowhere.
    metrics_address: str = "127.0.0.1:50053"
    metrics_buffer: int = 10_000


class RefinementServicer(refinement_pb2_grpc.RefinementServiceServicer):
    def __init__(self, mllm: TritonMLLM, sender: MetricsSender | None = None) -> None:
        self.mllm = mllm
        self.sender = sender

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one servicer per process
    def _custom_vocabulary(self, text: str) -> Vocabulary:
        return parse_vocabulary(text, source="request vocabulary")

    def _vocabulary(self, request, context) -> Vocabulary:
        if request.vocabulary_yaml:
            try:
                return self._custom_vocabulary(request.vocabulary_yaml)
            except VocabularyError as exc:
                abort_with(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            return builtin_vocabulary(request.vocabulary or "coco")
        except KeyError:
            abort_with(context, grpc.StatusCode.NOT_FOUND, f"unknown vocabulary {request.vocabulary!r}")

    def Refine(self, request: refinement_pb2.RefineRequest, context) -> refinement_pb2.RefineResponse:
        if not request.image:
            abort_with(context, grpc.StatusCode.INVALID_ARGUMENT, "image is empty")
        vocabulary = self._vocabulary(request, context)
        try:
            options = options_from_proto(request.options)
        except ValueError as exc:
            abort_with(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.mllm.set_deadline(context.time_remaining())
        start = time.perf_counter()
        try:
            result = tag_image(request.image, vocabulary, options, self.mllm)
        except MLLMError as exc:
            abort_with(context, _STATUS_OF[exc.kind], str(exc))
        finally:
            self.mllm.set_deadline(None)
        seconds = time.perf_counter() - start
        parts = result_parts(result)
        if self.sender is not None:
            reference = list(request.reference_labels) if request.has_reference else None
            record = record_to_proto(
                result, parts, len(vocabulary.categories), seconds, reference, request.request_id
            )
            self.sender.submit(record)
        log.info(
            "refined",
            strategy=options.strategy.value,
            vocabulary=vocabulary.name,
            labels=len(result.labels),
            calls=result.usage.calls,
        )
        return refinement_pb2.RefineResponse(**parts)


def build_server(settings: RefinerSettings) -> GrpcServer:
    registry = CollectorRegistry()
    mllm = TritonMLLM(settings.triton_url, timeout=settings.triton_timeout_seconds)
    sender = None
    if settings.metrics_address:
        sender = MetricsSender(settings.metrics_address, registry, capacity=settings.metrics_buffer)
    servicer = RefinementServicer(mllm, sender)
    return GrpcServer(
        settings,
        [SERVICE],
        lambda server: refinement_pb2_grpc.add_RefinementServiceServicer_to_server(servicer, server),
        readiness=mllm.ready,
        registry=registry,
    )


def main(argv: list[str] | None = None) -> None:
    run_service("refiner", RefinerSettings, "TAGLLM_REFINER_", build_server, argv)


if __name__ == "__main__":
    main()
