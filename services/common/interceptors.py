"""Cross-cutting concerns of every gRPC service: request ids, logs, metrics; strict decoding.

Each RPC gets a request id (the caller's `x-request-id`, else a new one) bound to every log line
it causes, one log line when it ends, and the server metrics: handled RPCs by status code,
handling time, RPCs in flight.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import structlog
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.logs import get_logger

REQUEST_ID_KEY = "x-request-id"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
# Neither observed nor counted against the RPC limit: probes must answer beside any load.
UNCOUNTED_METHODS = ("/grpc.health", "/grpc.reflection")
log = get_logger("grpc")


def request_id_from(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and value:
            return value[:128]
    return uuid.uuid4().hex


def _code_name(context, failure: BaseException | None) -> str:
    """The status the RPC ended with: the one set by abort, else what the failure means."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio reports some codes as their numbers
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if isinstance(failure, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN" if failure is not None else "OK"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, registry: CollectorRegistry) -> None:
        key = ("grpc_service", "grpc_method")
        self.handled = Counter(
            "tagllm_grpc_server_handled",
            "RPCs completed, by status code.",
            [*key, "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "tagllm_grpc_server_handling_seconds",
            "Time to handle an RPC.",
            key,
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge("tagllm_grpc_server_in_flight", "RPCs being handled.", key, registry=registry)

    def prepare(self, services: list[str]) -> None:
        """Create every method's series at zero (code OK), so that rates over the first
        requests are not lost to a series born after them."""
        pool = descriptor_pool.Default()
        for service in services:
            for method in pool.FindServiceByName(service).methods:
                self.handled.labels(service, method.name, "OK")
                self.seconds.labels(service, method.name)
                self.in_flight.labels(service, method.name)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        full_method = handler_call_details.method
        if handler is None or full_method.startswith(UNCOUNTED_METHODS):
            return handler
        service, _, method = full_method.lstrip("/").rpartition("/")
        in_flight = self.in_flight.labels(service, method)
        seconds = self.seconds.labels(service, method)

        def begin(context) -> float:
            # Each RPC is a task of its own: what is bound here stays with this RPC's log lines.
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=request_id_from(context), method=full_method)
            in_flight.inc()
            return time.perf_counter()

        def end(context, start: float, failure: BaseException | None) -> None:
            elapsed = time.perf_counter() - start
            code = _code_name(context, failure)
            in_flight.dec()
            seconds.observe(elapsed)
            self.handled.labels(service, method, code).inc()
            log.info("rpc", code=code, seconds=round(elapsed, 6))

        def wrap(behavior, streaming_response: bool):
            async def unary(request, context):
                start, failure = begin(context), None
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    end(context, start, failure)

            async def streaming(request, context):
                start, failure = begin(context), None
                try:
                    async for response in behavior(request, context):
                        yield response
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    end(context, start, failure)

            return streaming if streaming_response else unary

        return rewrap_handler(handler, wrap)


class DecodeInterceptor(grpc.aio.ServerInterceptor):
    """Decodes requests itself, so that bytes that are no valid message are answered
    INVALID_ARGUMENT (gRPC's own decoding answers INTERNAL, as if the server were broken)."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        async def decode(raw: bytes, context):
            try:
                return parse(raw)
            except DecodeError:
                log.info("rejected", code="INVALID_ARGUMENT", message="malformed request")
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "malformed request: not a valid message"
                )

        async def decoded_stream(raw_requests, context):
            async for raw in raw_requests:
                yield await decode(raw, context)

        def wrap(behavior, streaming_response: bool):
            streaming_request = handler.stream_unary or handler.stream_stream

            async def unary(raw, context):
                request = decoded_stream(raw, context) if streaming_request else await decode(raw, context)
                return await behavior(request, context)

            async def streaming(raw, context):
                request = decoded_stream(raw, context) if streaming_request else await decode(raw, context)
                async for response in behavior(request, context):
                    yield response

            return streaming if streaming_response else unary

        return rewrap_handler(handler, wrap, request_deserializer=None)


_SAME = object()


def rewrap_handler(handler, wrap, request_deserializer=_SAME):
    """A copy of `handler` whose behaviour is `wrap(behaviour, streaming_response)` (and whose
    request deserializer is `request_deserializer` when given)."""
    if request_deserializer is _SAME:
        request_deserializer = handler.request_deserializer
    kinds = [
        (handler.unary_unary, False, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, True, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, False, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, True, grpc.stream_stream_rpc_method_handler),
    ]
    for behavior, streaming_response, make in kinds:
        if behavior:
            return make(wrap(behavior, streaming_response), request_deserializer, handler.response_serializer)
    raise ValueError("handler has no behaviour")
