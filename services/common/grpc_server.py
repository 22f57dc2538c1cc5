"""One small gRPC server class for every service: interceptors, health, reflection, drain."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent import futures

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.logs import get_logger
from services.common.settings import GrpcSettings

REQUEST_ID_KEY = "x-request-id"
log = get_logger("grpc")


def request_id_from(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and value:
            return value[:128]
    return uuid.uuid4().hex


class RequestContextInterceptor(grpc.ServerInterceptor):
    """Binds a request id (from x-request-id, else new) to every log line of the RPC; logs its end."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if method.startswith("/grpc.health") or method.startswith("/grpc.reflection"):
            return handler

        def wrap(behavior, streaming_response: bool):
            def unary(request_or_iterator, context):
                structlog.contextvars.clear_contextvars()
                structlog.contextvars.bind_contextvars(request_id=request_id_from(context), method=method)
                start = time.perf_counter()
                try:
                    return behavior(request_or_iterator, context)
                finally:
                    log.info("rpc", code=_code_name(context), seconds=round(time.perf_counter() - start, 6))

            def streaming(request_or_iterator, context):
                structlog.contextvars.clear_contextvars()
                structlog.contextvars.bind_contextvars(request_id=request_id_from(context), method=method)
                start = time.perf_counter()
                try:
                    yield from behavior(request_or_iterator, context)
                finally:
                    log.info("rpc", code=_code_name(context), seconds=round(time.perf_counter() - start, 6))

            return streaming if streaming_response else unary

        return _rewrap(handler, wrap)


def _code_name(context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "OK"


def _rewrap(handler, wrap):
    """A copy of `handler` whose behaviour is `wrap(behaviour, streaming_response)`."""
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary, False), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream, True), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary, False), handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        wrap(handler.stream_stream, True), handler.request_deserializer, handler.response_serializer
    )


class GrpcServer:
    """Builds, runs and drains one gRPC server.

    `add_servicers(server)` registers the service's servicers; `service_names` are the full names
    reported by reflection and health. `readiness()`, polled every second, decides whether health
    says SERVING for them.
    """

    def __init__(
        self,
        settings: GrpcSettings,
        service_names: Iterable[str],
        add_servicers: Callable[[grpc.Server], None],
        readiness: Callable[[], bool] = lambda: True,
        interceptors: Iterable[grpc.ServerInterceptor] = (),
    ) -> None:
        self.settings = settings
        self.service_names = list(service_names)
        self.readiness = readiness
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
            interceptors=[RequestContextInterceptor(), *interceptors],
            options=options,
        )
        add_servicers(self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = self.server.add_insecure_port(f"{settings.host}:{settings.port}")
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {settings.host}:{settings.port}")
        self._stopping = threading.Event()
        self._set_serving(False)

    def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            self.health.set(name, status)

    def _watch_readiness(self) -> None:
        last = None
        while not self._stopping.is_set():
            try:
                ready = bool(self.readiness())
            except Exception:
                ready = False
            if ready != last:
                log.info("health", serving=ready)
                self._set_serving(ready)
                last = ready
            self._stopping.wait(1.0)

    def start(self) -> None:
        self.server.start()
        threading.Thread(target=self._watch_readiness, name="readiness", daemon=True).start()
        log.info("listening", address=f"{self.settings.host}:{self.port}", services=self.service_names)

    def stop(self) -> None:
        """Report NOT_SERVING, refuse new RPCs, let in-flight ones finish within the drain time."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(self.settings.drain_seconds).wait()
        log.info("stopped")

    def serve_until_signal(self) -> None:
        done = threading.Event()

        def on_signal(signum, frame):
            log.info("signal", signal=signal.Signals(signum).name)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        done.wait()
        self.stop()


def abort_with(context: grpc.ServicerContext, code: grpc.StatusCode, message: str):
    """Ends the RPC with `code`; logged with the request id."""
    log.info("rejected", code=code.name, message=message)
    context.abort(code, message)
