"""Gateway: the public TaggingService. Validates, normalises, caches, and forwards to the refiner."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import uuid
from concurrent import futures
from pathlib import Path

import grpc
import structlog
from google.rpc import code_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.cache_metrics import export_cache
from services.common.grpc_server import GrpcServer, ServiceError, abort_for, run_service
from services.common.interceptors import REQUEST_ID_KEY
from services.common.logs import get_logger
from services.gateway.auth import ApiKeyInterceptor
from services.gateway.budgets import OVERLOAD_RETRY_SECONDS, PixelBudget, StreamSlots
from services.gateway.quota import QuotaExceeded, Quotas, caller_of
from services.gateway.streaming import answer_stream
from tagllm.caching import LRUCache
from tagllm.client import channel_credentials, open_channel, retry_delay
from tagllm.convert import options_from_proto
from tagllm.imaging import ImageLimits, ImageRejected, PixelAdmission, normalize_image
from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc
from tagllm.prompts import build_styles
from tagllm.settings import GatewaySettings
from tagllm.strategies import check_options
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tagllm.vocab import VocabularyError, VocabularyRegistry

SERVICE = tagging_pb2.DESCRIPTOR.services_by_name["TaggingService"].full_name
REFINER_SERVICE = refinement_pb2.DESCRIPTOR.services_by_name["RefinementService"].full_name
log = get_logger("gateway")


_PASS_THROUGH = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}


class TaggingServicer(tagging_pb2_grpc.TaggingServiceServicer):
    """The public API. Every method is a coroutine on the server's event loop; image decoding
    runs on a thread pool, the refiner is called over an asyncio channel (`refiner`, set when the
    server starts)."""

    def __init__(self, settings: GatewaySettings, refiner=None) -> None:
        self.settings = settings
        self.refiner = refiner
        self.vocabularies = VocabularyRegistry(
            store=Path(settings.vocabulary_dir) if settings.vocabulary_dir else None
        )
        self.limits = ImageLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            model_pixels=settings.model_pixels,
            max_jpeg_scans=settings.max_jpeg_scans,
        )
        self.cache: LRUCache[tuple, common_pb2.TaggingResult] = LRUCache(settings.cache_entries)
        self.in_flight = 0
        self.quotas = Quotas(
            settings.quota_requests_per_second,
            settings.quota_images_per_second,
            min_image_burst=settings.max_batch_images,
        )
        self.pixels = PixelBudget(
            settings.max_pixels_in_flight,
            settings.max_caller_pixels_in_flight,
            settings.max_request_pixels_in_flight,
        )
        self.streams = StreamSlots(settings.max_streams_per_caller)
        self._model_version = ""
        self._decoders = futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="decode")

    # -- one image -------------------------------------------------------------------------

    async def tag_one(
        self,
        request: tagging_pb2.TagRequest,
        timeout: float,
        request_id: str,
        caller: str = "anonymous",
        call: object = None,
    ) -> tagging_pb2.TagResponse:
        """Tags one image or raises ServiceError with the status to answer. Cancelling the task
        (gRPC does when the client goes away) cancels the refiner's call too."""
        if self.in_flight >= self.settings.max_in_flight:  # shed at once rather than queue
            raise ServiceError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {self.settings.max_in_flight} images in flight; retry with backoff",
                retry_after=OVERLOAD_RETRY_SECONDS,
            )
        self.in_flight += 1
        try:
            return await self._tag_admitted(request, timeout, request_id, caller, call or object())
        finally:
            self.in_flight -= 1

    async def _tag_admitted(
        self, request, timeout: float, request_id: str, caller: str, call: object
    ) -> tagging_pb2.TagResponse:
        loop = asyncio.get_running_loop()
        admit = functools.partial(self.pixels.reserve, caller, call)
        work = functools.partial(
            contextvars.copy_context().run, self._refine_request, request, request_id, admit
        )
        refine, version = await loop.run_in_executor(self._decoders, work)
        # Requests with references go through, so the agreement metrics see every one of them.
        key = None
        if not refine.HasField("reference"):
            image_hash = hashlib.sha256(refine.image).digest()
            key = (
                image_hash,
                refine.vocabulary,
                version,
                request.options.SerializeToString(deterministic=True),
            )
        cached = self.cache.get((*key, self._model_version)) if key else None
        result = cached if cached is not None else await self._refine(refine, timeout)
        if key and cached is None:
            self._model_version = result.version.model
            self.cache.put((*key, result.version.model), result)
        return tagging_pb2.TagResponse(
            result=result, image_id=request.image.id, request_id=request_id, cached=cached is not None
        )

    def _refine_request(
        self, request: tagging_pb2.TagRequest, request_id: str, admit: PixelAdmission
    ) -> tuple[refinement_pb2.RefineRequest, str]:
        """The refiner's request (and the vocabulary's version), or ServiceError for bad input."""
        try:
            vocabulary = self.vocabularies.get(request.vocabulary)
        except KeyError:
            known = ", ".join(v.name for v, _ in self.vocabularies.all())
            message = f"unknown vocabulary {request.vocabulary[:64]!r}; known: {known[:500]}"
            raise ServiceError(
                grpc.StatusCode.NOT_FOUND, message + " (RegisterVocabulary adds one)"
            ) from None
        try:  # validated here; the refiner applies them
            check_options(options_from_proto(request.options), vocabulary)
        except ValueError as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"options: {str(exc)[:300]}") from None
        unknown = sorted(set(request.reference.labels) - set(vocabulary.names))
        if unknown:
            shown = [name[:64] for name in unknown[:10]]  # what is echoed stays short
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(unknown)} reference labels not in vocabulary {vocabulary.name!r}: {shown}",
            )
        try:
            image = normalize_image(request.image.content, self.limits, admit)
        except ImageRejected as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"image: {exc}") from None
        refine = refinement_pb2.RefineRequest(
            image=image.png,
            vocabulary=vocabulary.name,
            vocabulary_yaml="" if self.vocabularies.is_builtin(vocabulary.name) else vocabulary.source_text,
            options=request.options,
            request_id=request_id,
        )
        if request.HasField("reference"):
            # A label repeated (one per box of a crowd photo) is one label of the image.
            refine.reference.SetInParent()
            refine.reference.labels.extend(dict.fromkeys(request.reference.labels))
        return refine, vocabulary.full_version

    async def _refine(self, refine: refinement_pb2.RefineRequest, timeout: float) -> common_pb2.TaggingResult:
        try:
            reply = await self.refiner.Refine(
                refine, timeout=timeout, metadata=((REQUEST_ID_KEY, refine.request_id),)
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code() if exc.code() in _PASS_THROUGH else grpc.StatusCode.UNAVAILABLE
            # The refiner's RetryInfo (a full model queue) reaches the client unchanged.
            retry_after = retry_delay(exc) or None
            raise ServiceError(code, f"refiner: {(exc.details() or '')[:500]}", retry_after) from None
        return reply.result

    def _timeout(self, context) -> float:
        remaining = context.time_remaining()
        return (
            min(remaining, self.settings.default_timeout_seconds)
            if remaining
            else self.settings.default_timeout_seconds
        )

    def _request_id(self) -> str:
        return structlog.contextvars.get_contextvars().get("request_id") or uuid.uuid4().hex

    def _caller(self, context) -> str:
        # Without keys every caller is one: a bucket per made-up header would be unbounded.
        return caller_of(context.invocation_metadata()) if self.settings.api_keys else "anonymous"

    def _charge(self, context, requests: int = 0, images: int = 0) -> None:
        try:
            self.quotas.charge(self._caller(context), requests=requests, images=images)
        except QuotaExceeded as exc:
            raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc.retry_after) from None

    # -- RPCs ------------------------------------------------------------------------------

    async def Tag(self, request, context):
        try:
            self._charge(context, requests=1, images=1)
            return await self.tag_one(
                request, self._timeout(context), self._request_id(), self._caller(context)
            )
        except ServiceError as exc:
            await abort_for(context, exc)

    async def _tag_to_status(self, request, timeout, request_id, context, call: object, charge: bool = False):
        try:
            if charge:
                self._charge(context, images=1)
            response = await self.tag_one(request, timeout, request_id, self._caller(context), call)
            return status_pb2.Status(code=code_pb2.OK), response
        except ServiceError as exc:
            return exc.to_status(), None
        except Exception as exc:  # never let one image fail the others
            log.exception("tag failed", request_id=request_id)
            return status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"internal error: {type(exc).__name__}"
            ), None

    async def BatchTag(self, request, context):
        try:
            if len(request.requests) > self.settings.max_batch_images:
                raise ServiceError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{len(request.requests)} images in one batch; the limit is "
                    f"{self.settings.max_batch_images}",
                )
            self._charge(context, requests=1, images=len(request.requests))
        except ServiceError as exc:
            await abort_for(context, exc)
        timeout, base_id, call = self._timeout(context), self._request_id(), object()
        outcomes = await asyncio.gather(
            *(
                self._tag_to_status(item, timeout, f"{base_id}.{i}", context, call)
                for i, item in enumerate(request.requests)
            )
        )
        return tagging_pb2.BatchTagResponse(
            results=[
                tagging_pb2.BatchTagResult(status=status, response=response) for status, response in outcomes
            ]
        )

    async def StreamTag(self, request_iterator, context):
        """Answers each image as it is done, in completion order (flow control: `streaming.py`)."""
        try:
            self._charge(context, requests=1)
            caller = self._caller(context)
            self.streams.open(caller)
        except ServiceError as exc:
            await abort_for(context, exc)
        try:
            timeout, base_id, call = self._timeout(context), self._request_id(), object()

            def tag_item(item, request_id):
                return self._tag_to_status(item, timeout, request_id, context, call, charge=True)

            async for answer in answer_stream(
                request_iterator,
                context,
                tag_item,
                base_id,
                self.settings.stream_window,
                self.settings.stream_idle_seconds,
            ):
                yield answer
        finally:
            self.streams.close(caller)

    async def ListVocabularies(self, request, context):
        return tagging_pb2.ListVocabulariesResponse(
            vocabularies=[_vocabulary_info(v, builtin) for v, builtin in self.vocabularies.all()]
        )

    async def RegisterVocabulary(self, request, context):
        try:
            self._charge(context, requests=1)
            loop = asyncio.get_running_loop()
            # Parsing and checking a large vocabulary takes a while: off the event loop.
            vocabulary = await loop.run_in_executor(self._decoders, self._register, request)
        except ServiceError as exc:
            await abort_for(context, exc)
        log.info("vocabulary registered", vocabulary=vocabulary.name, version=vocabulary.full_version)
        return tagging_pb2.RegisterVocabularyResponse(vocabulary=_vocabulary_info(vocabulary, False))

    def _register(self, request):
        try:
            return self.vocabularies.register(request.yaml, replace=request.replace, check=build_styles)
        except VocabularyError as exc:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:1000]) from None
        except FileExistsError as exc:
            raise ServiceError(
                grpc.StatusCode.ALREADY_EXISTS, f"{str(exc)[:300]}; set replace to overwrite it"
            ) from None
        except OverflowError as exc:
            raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)[:300]) from None


def _vocabulary_info(vocabulary, builtin: bool) -> tagging_pb2.VocabularyInfo:
    return tagging_pb2.VocabularyInfo(
        name=vocabulary.name,
        version=vocabulary.full_version,
        categories=len(vocabulary.categories),
        groups=len(vocabulary.groups),
        builtin=builtin,
    )


def build_server(settings: GatewaySettings) -> GrpcServer:
    servicer = TaggingServicer(settings)
    registry = CollectorRegistry()
    export_cache(registry, "result", servicer.cache)
    credentials = channel_credentials(
        settings.tls_ca_file, settings.tls_client_cert_file, settings.tls_client_key_file
    )
    health: list[health_pb2_grpc.HealthStub] = []

    def add_servicers(server: grpc.aio.Server) -> None:
        # On the server's event loop: asyncio channels belong to the loop they are made on.
        channel = open_channel(
            settings.refiner_address,
            credentials,
            options=[
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                # With a dns:/// address of several refiners, spread RPCs over all of them.
                ("grpc.lb_policy_name", "round_robin"),
                ("grpc.dns_min_time_between_resolutions_ms", int(settings.refiner_resolve_seconds * 1000)),
            ],
            asynchronous=True,
        )
        servicer.refiner = refinement_pb2_grpc.RefinementServiceStub(channel)
        health.append(health_pb2_grpc.HealthStub(channel))
        tagging_pb2_grpc.add_TaggingServiceServicer_to_server(servicer, server)

    async def refiner_serving() -> bool:
        request = health_pb2.HealthCheckRequest(service=REFINER_SERVICE)
        reply = await health[0].Check(request, timeout=settings.readiness_timeout_seconds)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    interceptors = [ApiKeyInterceptor(settings.api_keys)] if settings.api_keys else []
    return GrpcServer(
        settings,
        [SERVICE],
        add_servicers,
        readiness=refiner_serving,
        interceptors=interceptors,
        registry=registry,
    )


def main(argv: list[str] | None = None) -> None:
    run_service("gateway", GatewaySettings, build_server, argv)


if __name__ == "__main__":
    main()
