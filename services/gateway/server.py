"""Gateway: the public TaggingService. Validates, normalises, caches, and forwards to the refiner."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import queue
import threading
import uuid
from concurrent import futures

import grpc
import structlog
from google.rpc import code_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.cache_metrics import export_cache
from services.common.grpc_server import GrpcServer, abort_with, run_service
from services.common.interceptors import REQUEST_ID_KEY, rewrap_handler
from services.common.logs import get_logger
from services.common.settings import GrpcSettings
from tagllm.caching import LRUCache
from tagllm.convert import options_from_proto
from tagllm.imaging import DEFAULT_LIMITS, ImageLimits, ImageRejected, normalize_image
from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc
from tagllm.prompts import build_styles
from tagllm.strategies import check_options
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tagllm.vocab import VocabularyError, VocabularyRegistry

SERVICE = tagging_pb2.DESCRIPTOR.services_by_name["TaggingService"].full_name
REFINER_SERVICE = refinement_pb2.DESCRIPTOR.services_by_name["RefinementService"].full_name
log = get_logger("gateway")


@dataclasses.dataclass(frozen=True)
class GatewaySettings(GrpcSettings):
    port: int = 50051
    refiner_address: str = "127.0.0.1:50052"
    max_image_bytes: int = DEFAULT_LIMITS.max_bytes
    max_image_pixels: int = DEFAULT_LIMITS.max_pixels
    model_pixels: int = DEFAULT_LIMITS.model_pixels
    max_batch_images: int = 64
    # Images being tagged at once across all RPCs; more get RESOURCE_EXHAUSTED.
    max_in_flight: int = 64
    # Images of one StreamTag call in flight at once.
    stream_window: int = 8
    cache_entries: int = 10_000
    # Used when the client sets no deadline.
    default_timeout_seconds: float = 300.0
    # Comma-separated keys; empty disables authentication unless require_api_keys is set.
    api_keys: tuple[str, ...] = ()
    # Refuse to start without keys (fail closed, e.g. when a Secret failed to mount).
    require_api_keys: bool = False

    def __post_init__(self) -> None:
        if self.require_api_keys and not self.api_keys:
            raise ValueError("TAGLLM_GATEWAY_REQUIRE_API_KEYS is set but TAGLLM_GATEWAY_API_KEYS is empty")
        for name in (
            "max_batch_images",
            "max_in_flight",
            "stream_window",
            "max_image_bytes",
            "max_image_pixels",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"TAGLLM_GATEWAY_{name.upper()} must be at least 1")


class TagError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ApiKeyInterceptor(grpc.ServerInterceptor):
    """Requires `authorization: Bearer KEY`; health and reflection stay open.

    Keys are compared in constant time. A refused call is answered UNAUTHENTICATED by a handler
    of the method's own kind, so a streaming call is refused at once instead of waiting for a
    message it will never be allowed to send.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = tuple(key.encode() for key in keys)

    def _allowed(self, metadata) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value.removeprefix("Bearer ").strip().encode()
                # Every key is compared, so the time taken does not say which one nearly matched.
                return any([hmac.compare_digest(token, known) for known in self.keys])
        return False

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        if self._allowed(handler_call_details.invocation_metadata):
            return handler

        def deny(request_or_iterator, context):
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing or unknown API key (authorization: Bearer KEY)"
            )

        return rewrap_handler(handler, lambda behavior, streaming_response: deny)


_PASS_THROUGH = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}


class TaggingServicer(tagging_pb2_grpc.TaggingServiceServicer):
    def __init__(self, settings: GatewaySettings, refiner: refinement_pb2_grpc.RefinementServiceStub) -> None:
        self.settings = settings
        self.refiner = refiner
        self.vocabularies = VocabularyRegistry()
        self.limits = ImageLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            model_pixels=settings.model_pixels,
        )
        self.cache: LRUCache[tuple, common_pb2.TaggingResult] = LRUCache(settings.cache_entries)
        self._slots = threading.BoundedSemaphore(settings.max_in_flight)
        self._model_version = ""
        self._pool = futures.ThreadPoolExecutor(max_workers=settings.max_in_flight, thread_name_prefix="tag")

    # -- one image -------------------------------------------------------------------------

    def tag_one(
        self, request: tagging_pb2.TagRequest, timeout: float, request_id: str, context=None
    ) -> tagging_pb2.TagResponse:
        """Tags one image or raises TagError with the status to answer. With the client's
        `context`, a client that goes away cancels the refiner's work too."""
        refine, version = self._refine_request(request, request_id)
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
        result = cached if cached is not None else self._refine(refine, timeout, context)
        if key and cached is None:
            self._model_version = result.version.model
            self.cache.put((*key, result.version.model), result)
        return tagging_pb2.TagResponse(
            result=result, image_id=request.image.id, request_id=request_id, cached=cached is not None
        )

    def _refine_request(
        self, request: tagging_pb2.TagRequest, request_id: str
    ) -> tuple[refinement_pb2.RefineRequest, str]:
        """The refiner's request (and the vocabulary's version), or TagError for bad input."""
        try:
            vocabulary = self.vocabularies.get(request.vocabulary)
        except KeyError:
            known = ", ".join(v.name for v, _ in self.vocabularies.all())
            message = f"unknown vocabulary {request.vocabulary[:64]!r}; known: {known[:500]}"
            raise TagError(grpc.StatusCode.NOT_FOUND, message + " (RegisterVocabulary adds one)") from None
        try:  # validated here; the refiner applies them
            check_options(options_from_proto(request.options), vocabulary)
        except ValueError as exc:
            raise TagError(grpc.StatusCode.INVALID_ARGUMENT, f"options: {exc}") from None
        unknown = sorted(set(request.reference.labels) - set(vocabulary.names))
        if unknown:
            shown = [name[:64] for name in unknown[:10]]  # what is echoed stays short
            raise TagError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(unknown)} reference labels not in vocabulary {vocabulary.name!r}: {shown}",
            )
        try:
            image = normalize_image(request.image.content, self.limits)
        except ImageRejected as exc:
            raise TagError(grpc.StatusCode.INVALID_ARGUMENT, f"image: {exc}") from None
        refine = refinement_pb2.RefineRequest(
            image=image.png,
            vocabulary=vocabulary.name,
            vocabulary_yaml="" if self.vocabularies.is_builtin(vocabulary.name) else vocabulary.source_text,
            options=request.options,
            request_id=request_id,
        )
        if request.HasField("reference"):
            refine.reference.CopyFrom(request.reference)
        return refine, vocabulary.full_version

    def _refine(
        self, refine: refinement_pb2.RefineRequest, timeout: float, context
    ) -> common_pb2.TaggingResult:
        if not self._slots.acquire(blocking=False):
            raise TagError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {self.settings.max_in_flight} images in flight; retry with backoff",
            )
        try:
            call = self.refiner.Refine.future(
                refine, timeout=timeout, metadata=[(REQUEST_ID_KEY, refine.request_id)]
            )
            if context is not None:
                context.add_callback(call.cancel)  # no-op once the call has ended
            reply = call.result()
        except grpc.FutureCancelledError:
            raise TagError(grpc.StatusCode.CANCELLED, "the client cancelled the request") from None
        except grpc.RpcError as exc:
            code = exc.code() if exc.code() in _PASS_THROUGH else grpc.StatusCode.UNAVAILABLE
            raise TagError(code, f"refiner: {exc.details()}") from None
        finally:
            self._slots.release()
        return reply.result

    def _timeout(self, context) -> float:
        remaining = context.time_remaining()
        return (
            min(remaining, self.settings.default_timeout_seconds)
            if remaining
            else self.settings.default_timeout_seconds
        )

    def _request_id(self, context) -> str:
        return structlog.contextvars.get_contextvars().get("request_id") or uuid.uuid4().hex

    # -- RPCs ------------------------------------------------------------------------------

    def Tag(self, request, context):
        try:
            return self.tag_one(request, self._timeout(context), self._request_id(context), context)
        except TagError as exc:
            abort_with(context, exc.code, str(exc))

    def _tag_to_status(self, request, timeout, request_id, context=None):
        try:
            response = self.tag_one(request, timeout, request_id, context)
            return status_pb2.Status(code=code_pb2.OK), response
        except TagError as exc:
            return status_pb2.Status(code=exc.code.value[0], message=str(exc)), None
        except Exception as exc:  # never let one image fail the others
            log.exception("tag failed")
            return status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"internal error: {type(exc).__name__}"
            ), None

    def BatchTag(self, request, context):
        if len(request.requests) > self.settings.max_batch_images:
            abort_with(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.requests)} images in one batch; the limit is {self.settings.max_batch_images}",
            )
        timeout, base_id = self._timeout(context), self._request_id(context)
        jobs = [
            self._pool.submit(self._tag_to_status, item, timeout, f"{base_id}.{i}", context)
            for i, item in enumerate(request.requests)
        ]
        results = []
        for job in jobs:
            status, response = job.result()
            results.append(tagging_pb2.BatchTagResult(status=status, response=response))
        return tagging_pb2.BatchTagResponse(results=results)

    def StreamTag(self, request_iterator, context):
        timeout, base_id = self._timeout(context), self._request_id(context)
        window = threading.BoundedSemaphore(self.settings.stream_window)
        done: queue.Queue = queue.Queue()
        submitted = 0
        finished_reading = threading.Event()

        def work(item, request_id):
            try:
                status, response = self._tag_to_status(item, timeout, request_id, context)
                done.put(
                    tagging_pb2.StreamTagResponse(image_id=item.image.id, status=status, response=response)
                )
            finally:
                window.release()

        def read():
            nonlocal submitted
            try:
                for i, item in enumerate(request_iterator):
                    window.acquire()
                    submitted += 1
                    self._pool.submit(work, item, f"{base_id}.{i}")
            except Exception as exc:  # the client went away: answer what was already sent
                log.info("stream input ended early", error=type(exc).__name__, submitted=submitted)
            finally:
                finished_reading.set()
                done.put(None)

        threading.Thread(target=read, name="stream-reader", daemon=True).start()
        sent = 0
        while True:
            item = done.get()
            if item is not None:
                sent += 1
                yield item
            if finished_reading.is_set() and sent == submitted:
                break

    def ListVocabularies(self, request, context):
        return tagging_pb2.ListVocabulariesResponse(
            vocabularies=[_vocabulary_info(v, builtin) for v, builtin in self.vocabularies.all()]
        )

    def RegisterVocabulary(self, request, context):
        try:
            vocabulary = self.vocabularies.register(request.yaml, replace=request.replace, check=build_styles)
        except VocabularyError as exc:
            abort_with(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except FileExistsError as exc:
            abort_with(context, grpc.StatusCode.ALREADY_EXISTS, f"{exc}; set replace to overwrite it")
        except OverflowError as exc:
            abort_with(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        log.info("vocabulary registered", vocabulary=vocabulary.name, version=vocabulary.full_version)
        return tagging_pb2.RegisterVocabularyResponse(vocabulary=_vocabulary_info(vocabulary, False))


def _vocabulary_info(vocabulary, builtin: bool) -> tagging_pb2.VocabularyInfo:
    return tagging_pb2.VocabularyInfo(
        name=vocabulary.name,
        version=vocabulary.full_version,
        categories=len(vocabulary.categories),
        groups=len(vocabulary.groups),
        builtin=builtin,
    )


def build_server(settings: GatewaySettings) -> GrpcServer:
    channel = grpc.insecure_channel(
        settings.refiner_address,
        options=[
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            # With a dns:/// address of several refiners, spread RPCs over all of them.
            ("grpc.lb_policy_name", "round_robin"),
        ],
    )
    servicer = TaggingServicer(settings, refinement_pb2_grpc.RefinementServiceStub(channel))
    registry = CollectorRegistry()
    export_cache(registry, "result", servicer.cache)
    refiner_health = health_pb2_grpc.HealthStub(channel)

    def refiner_serving() -> bool:
        reply = refiner_health.Check(health_pb2.HealthCheckRequest(service=REFINER_SERVICE), timeout=2)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    interceptors = [ApiKeyInterceptor(settings.api_keys)] if settings.api_keys else []
    return GrpcServer(
        settings,
        [SERVICE],
        lambda server: tagging_pb2_grpc.add_TaggingServiceServicer_to_server(servicer, server),
        readiness=refiner_serving,
        interceptors=interceptors,
        registry=registry,
    )


def main(argv: list[str] | None = None) -> None:
    run_service("gateway", GatewaySettings, "TAGLLM_GATEWAY_", build_server, argv)


if __name__ == "__main__":
    main()
