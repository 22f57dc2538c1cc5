"""Gateway: the public TaggingService over gRPC. The servicer only converts: the wire to the core's
calls (`core.py`), and its answers and errors back to messages and statuses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import cast

import grpc
import structlog
from google.rpc import code_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from services.common.cache_metrics import export_cache
from services.common.grpc_server import GrpcServer, ServiceError, abort_for, run_service
from services.gateway.auth import ApiKeyInterceptor
from services.gateway.contract import Answer, CallContext, GatewayError, Tagged, TagItem
from services.gateway.core import GatewayCore
from services.gateway.quota import caller_of
from services.gateway.refiner_client import GrpcRefiner
from tagllm.client import channel_credentials, open_channel
from tagllm.convert import options_from_proto
from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc
from tagllm.settings import GatewaySettings
from tagllm.strategies import StrategyOptions
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tagllm.vocab import Vocabulary

__all__ = ["GatewaySettings", "TaggingServicer", "build_server", "main"]

SERVICE = tagging_pb2.DESCRIPTOR.services_by_name["TaggingService"].full_name
REFINER_SERVICE = refinement_pb2.DESCRIPTOR.services_by_name["RefinementService"].full_name


class TaggingServicer(tagging_pb2_grpc.TaggingServiceServicer):
    """The public API: each method converts its request and context, calls the core and converts
    the answer back; a GatewayError ends the call with its status (RetryInfo included)."""

    def __init__(self, core: GatewayCore, keyed: bool) -> None:
        self.core = core
        # Without keys every caller is one: a bucket per made-up header would be unbounded.
        self.keyed = keyed

    def _call(self, context: grpc.aio.ServicerContext) -> CallContext:
        return CallContext(
            # Set by the request-id interceptor, so that the logs and the answer agree.
            request_id=structlog.contextvars.get_contextvars().get("request_id") or uuid.uuid4().hex,
            caller=caller_of(context.invocation_metadata()) if self.keyed else "anonymous",
            time_remaining=context.time_remaining(),
            peer=context.peer(),
        )

    async def Tag(self, request, context):
        try:
            return tag_response(await self.core.tag(tag_item(request), self._call(context)))
        except GatewayError as exc:
            await abort_for(context, service_error(exc))

    async def BatchTag(self, request, context):
        try:
            answers = await self.core.batch(_BatchItems(request.requests), self._call(context))
        except GatewayError as exc:
            await abort_for(context, service_error(exc))
        return tagging_pb2.BatchTagResponse(
            results=[
                tagging_pb2.BatchTagResult(status=answer_status(answer), response=_response(answer))
                for answer in answers
            ]
        )

    async def StreamTag(self, request_iterator, context):
        items = (tag_item(request) async for request in request_iterator)
        try:
            async for answer in self.core.stream(items, self._call(context)):
                yield tagging_pb2.StreamTagResponse(
                    image_id=answer.image_id, status=answer_status(answer), response=_response(answer)
                )
        except GatewayError as exc:
            await abort_for(context, service_error(exc))

    async def ListVocabularies(self, request, context):
        return tagging_pb2.ListVocabulariesResponse(
            vocabularies=[vocabulary_info(v, builtin) for v, builtin in self.core.vocabulary_list()]
        )

    async def RegisterVocabulary(self, request, context):
        try:
            vocabulary = await self.core.register(request.yaml, request.replace, self._call(context))
        except GatewayError as exc:
            await abort_for(context, service_error(exc))
        return tagging_pb2.RegisterVocabularyResponse(vocabulary=vocabulary_info(vocabulary, False))


# -- conversions ---------------------------------------------------------------------------


def tag_item(request: tagging_pb2.TagRequest) -> TagItem:
    try:
        options, problem = options_from_proto(request.options), ""
    except ValueError as exc:  # the core reports it in its turn, after the vocabulary
        options, problem = StrategyOptions(), str(exc)
    return TagItem(
        image=request.image.content,
        image_id=request.image.id,
        vocabulary=request.vocabulary,
        options=options,
        options_problem=problem,
        reference=tuple(request.reference.labels) if request.HasField("reference") else None,
    )


class _BatchItems:
    """A batch's requests, each converted as the core reads it: only once it has counted them."""

    def __init__(self, requests: Sequence[tagging_pb2.TagRequest]) -> None:
        self.requests = requests

    def __len__(self) -> int:
        return len(self.requests)

    def __iter__(self) -> Iterator[TagItem]:
        return map(tag_item, self.requests)


def tag_response(tagged: Tagged) -> tagging_pb2.TagResponse:
    return tagging_pb2.TagResponse(
        result=cast(common_pb2.TaggingResult, tagged.result),  # the refiner's, passed on
        image_id=tagged.image_id,
        request_id=tagged.request_id,
        cached=tagged.cached,
    )


def service_error(error: GatewayError) -> ServiceError:
    """The gRPC status of a core error: its code is named as the status is."""
    return ServiceError(grpc.StatusCode[error.code.name], str(error), error.retry_after)


def answer_status(answer: Answer) -> status_pb2.Status:
    return service_error(answer.error).to_status() if answer.error else status_pb2.Status(code=code_pb2.OK)


def _response(answer: Answer) -> tagging_pb2.TagResponse | None:
    return tag_response(answer.tagged) if answer.tagged else None


def vocabulary_info(vocabulary: Vocabulary, builtin: bool) -> tagging_pb2.VocabularyInfo:
    return tagging_pb2.VocabularyInfo(
        name=vocabulary.name,
        version=vocabulary.full_version,
        categories=len(vocabulary.categories),
        groups=len(vocabulary.groups),
        builtin=builtin,
    )


def build_server(settings: GatewaySettings) -> GrpcServer:
    core = GatewayCore(settings)
    registry = CollectorRegistry()
    export_cache(registry, "result", core.cache)
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
        core.refiner = GrpcRefiner(refinement_pb2_grpc.RefinementServiceStub(channel))
        health.append(health_pb2_grpc.HealthStub(channel))
        servicer = TaggingServicer(core, keyed=bool(settings.api_keys))
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
