"""Refiner: runs a tagging strategy for one image against the model server (stateless)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from concurrent import futures

import grpc
from prometheus_client import CollectorRegistry, Gauge

from services.common.grpc_server import GrpcServer, ServiceError, abort_for, run_service
from services.common.logs import get_logger
from services.refiner.metrics_sender import MetricsSender
from tagllm.caching import LRUCache
from tagllm.client import channel_credentials
from tagllm.convert import options_from_proto, record_to_proto, result_to_proto
from tagllm.imaging import DEFAULT_LIMITS, ImageLimits, ImageRejected, check_normalized
from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc
from tagllm.mllm.contract import CallContext, ErrorKind, MLLMError
from tagllm.mllm.triton_client import TritonMLLM
from tagllm.settings import RefinerSettings
from tagllm.strategies import check_options, tag_image
from tagllm.vocab import Vocabulary, VocabularyError, builtin_vocabulary, parse_vocabulary
from tagllm.vocab.registry import DEFAULT_VOCABULARY

SERVICE = refinement_pb2.DESCRIPTOR.services_by_name["RefinementService"].full_name
log = get_logger("refiner")
_STATUS_OF = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.DEADLINE: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


class RefinementServicer(refinement_pb2_grpc.RefinementServiceServicer):
    """Runs one strategy per request. The work (model calls, parsing) runs on a thread pool; the
    caller's cancel or deadline stops it before its next stage."""

    def __init__(
        self,
        mllm: TritonMLLM,
        sender: MetricsSender | None = None,
        limits: ImageLimits = DEFAULT_LIMITS,
        workers: int = 16,
        overload_retry_seconds: float = 1.0,
    ) -> None:
        self.mllm = mllm
        self.overload_retry_seconds = overload_retry_seconds
        self.sender = sender
        self.limits = limits
        # Custom vocabularies arrive inline with every request; parse each text once.
        self._custom: LRUCache[str, Vocabulary] = LRUCache(64)
        self._workers = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="refine")

    def _vocabulary(self, request) -> Vocabulary:
        if request.vocabulary_yaml:
            try:
                return self._custom.get_or_build(
                    request.vocabulary_yaml,
                    lambda text: parse_vocabulary(text, source="request vocabulary"),
                )
            except VocabularyError as exc:
                raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:1000]) from None
        try:
            return builtin_vocabulary(request.vocabulary or DEFAULT_VOCABULARY)
        except KeyError:
            raise ServiceError(
                grpc.StatusCode.NOT_FOUND, f"unknown vocabulary {request.vocabulary[:64]!r}"
            ) from None

    def refine(
        self, request: refinement_pb2.RefineRequest, call: CallContext
    ) -> refinement_pb2.RefineResponse:
        """The answer to one request, or ServiceError with the status to answer."""
        try:
            check_normalized(request.image, self.limits)
        except ImageRejected as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"image: {exc}") from None
        vocabulary = self._vocabulary(request)
        try:
            options = options_from_proto(request.options)
            check_options(options, vocabulary)
        except ValueError as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:300]) from None
        start = time.perf_counter()
        try:
            result = tag_image(request.image, vocabulary, options, self.mllm, call)
        except MLLMError as exc:
            retry_after = self.overload_retry_seconds if exc.kind is ErrorKind.OVERLOADED else None
            raise ServiceError(_STATUS_OF[exc.kind], str(exc)[:500], retry_after) from None
        except Exception:
            # A bug of ours: logged with the request id and answered INTERNAL, so it counts as an
            # error (never as OK) and no client retries it as if the model were busy.
            log.exception("refiner failed", request_id=request.request_id)
            raise ServiceError(
                grpc.StatusCode.INTERNAL, "internal error in the refiner; see its log"
            ) from None
        seconds = time.perf_counter() - start
        message = result_to_proto(result)
        if self.sender is not None:
            reference = request.reference if request.HasField("reference") else None
            record = record_to_proto(
                message, len(vocabulary.categories), seconds, reference, request.request_id
            )
            self.sender.submit(record)
        log.info(
            "refined",
            strategy=options.strategy,
            vocabulary=vocabulary.name,
            labels=len(result.labels),
            calls=result.usage.mllm_calls,
        )
        return refinement_pb2.RefineResponse(result=message)

    async def Refine(self, request: refinement_pb2.RefineRequest, context) -> refinement_pb2.RefineResponse:
        caller_gone = threading.Event()
        call = CallContext.within(
            context.time_remaining(), request.request_id, lambda: not caller_gone.is_set()
        )
        work = functools.partial(contextvars.copy_context().run, self.refine, request, call)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._workers, work)
        except ServiceError as exc:
            await abort_for(context, exc)
        finally:
            # Cancelled (client gone, deadline) or done: no later stage runs for this call.
            caller_gone.set()


def build_server(settings: RefinerSettings) -> GrpcServer:
    registry = CollectorRegistry()
    # One client identity for every call it makes: to Triton and to the metrics service.
    credentials = channel_credentials(
        settings.tls_ca_file, settings.tls_client_cert_file, settings.tls_client_key_file
    )
    mllm = TritonMLLM(
        settings.triton_url,
        timeout=settings.triton_timeout_seconds,
        credentials=credentials,
        probe_timeout=settings.readiness_timeout_seconds,
        refresh_seconds=settings.triton_refresh_seconds,
        affinity_slack=settings.triton_affinity_slack,
    )
    replicas = Gauge(
        "tagllm_model_server_replicas",
        "Model-server replicas this refiner sends requests to.",
        registry=registry,
    )
    replicas.set_function(lambda: len(mllm.urls))
    sender = None
    if settings.metrics_address:
        sender = MetricsSender(settings.metrics_address, registry, capacity=settings.metrics_buffer,
                               credentials=credentials)  # fmt: skip
    limits = ImageLimits(max_bytes=settings.max_image_bytes, model_pixels=settings.model_pixels)
    servicer = RefinementServicer(
        mllm, sender, limits, workers=settings.workers, overload_retry_seconds=settings.overload_retry_seconds
    )

    async def triton_ready() -> bool:
        return await asyncio.to_thread(mllm.ready)

    return GrpcServer(
        settings,
        [SERVICE],
        lambda server: refinement_pb2_grpc.add_RefinementServiceServicer_to_server(servicer, server),
        readiness=triton_ready,
        registry=registry,
    )


def main(argv: list[str] | None = None) -> None:
    run_service("refiner", RefinerSettings, build_server, argv)


if __name__ == "__main__":
    main()
