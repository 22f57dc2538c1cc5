"""One small gRPC server class for every service: asyncio serving, interceptors, health,
reflection, TLS, drain.

Serving is asyncio (`grpc.aio`): an idle stream or a slow call holds a coroutine, not a thread,
so no number of idle clients can starve health checks or other calls. Blocking work (image
decoding, model calls) runs in thread pools the services own.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, disable_created_metrics, start_http_server

from services.common.interceptors import (
    UNCOUNTED_METHODS,
    DecodeInterceptor,
    ObservabilityInterceptor,
    rewrap_handler,
)
from services.common.logs import configure_logging, get_logger
from services.common.tls import server_credentials
from tagllm.client import STATUS_DETAILS_KEY
from tagllm.settings import GrpcSettings, load_settings

log = get_logger("grpc")
# One sample per counter, not two: the *_created series only double what Prometheus stores.
disable_created_metrics()


class ServiceError(Exception):
    """Ends an RPC (or one image of a batch) with `code`. `retry_after` (seconds) travels as
    google.rpc.RetryInfo, for clients that back off as told."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after

    def to_status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code.value[0], message=str(self))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(math.ceil(self.retry_after * 1000))  # never "retry at once"
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
            status.details.append(detail)
        return status


async def abort_with(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, retry_after: float | None = None
) -> NoReturn:
    """Ends the RPC with `code` (and RetryInfo when `retry_after` is given); logged."""
    await abort_for(context, ServiceError(code, message, retry_after))


async def abort_for(context: grpc.aio.ServicerContext, error: ServiceError) -> NoReturn:
    log.info("rejected", code=error.code.name, message=str(error)[:300])
    trailing = ((STATUS_DETAILS_KEY, error.to_status().SerializeToString()),)
    await context.abort(error.code, str(error), trailing_metadata=trailing)
    raise AssertionError("grpc's abort raises")


class ConcurrencyLimit(grpc.aio.ServerInterceptor):
    """At most `limit` RPCs open at once (streams included), refused RESOURCE_EXHAUSTED beyond.
    Health and reflection are not counted, so a server full of idle streams still answers its
    readiness probe (gRPC's own `maximum_concurrent_rpcs` counts them too)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    async def _admit(self, context) -> None:
        if self.open >= self.limit:
            await abort_with(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {self.limit} RPCs open on this server; retry with backoff",
                retry_after=1.0,
            )
        self.open += 1

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(UNCOUNTED_METHODS):
            return handler

        def wrap(behavior, streaming_response: bool):
            async def unary(request, context):
                await self._admit(context)
                try:
                    return await behavior(request, context)
                finally:
                    self.open -= 1

            async def streaming(request, context):
                await self._admit(context)
                try:
                    async for response in behavior(request, context):
                        yield response
                finally:
                    self.open -= 1

            return streaming if streaming_response else unary

        return rewrap_handler(handler, wrap)


Readiness = Callable[[], Awaitable[bool]]
# The health service name that says only "this process works" (SERVING from start to drain), for
# startup and liveness probes: readiness ("" and the service names) also waits for dependencies,
# and a process must not be restarted because the model servers are still loading.
LIVENESS_SERVICE = "liveness"


async def always_ready() -> bool:
    return True


class GrpcServer:
    """Builds, runs and drains one asyncio gRPC server on a thread of its own.

    `add_servicers(server)` registers the service's servicers; it runs on the server's event loop,
    so it may open asyncio channels. `service_names` are the full names reported by reflection and
    health. `readiness()`, awaited every second within `readiness_timeout_seconds`, decides whether
    health says SERVING for them (and for ""): a probe that hangs reads as not ready. Health
    service `LIVENESS_SERVICE` is SERVING whenever the server runs, ready or not.
    """

    def __init__(
        self,
        settings: GrpcSettings,
        service_names: Iterable[str],
        add_servicers: Callable[[grpc.aio.Server], None],
        readiness: Readiness = always_ready,
        interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        # Each server exports its own gRPC metrics (and the caller's, if it shares the registry).
        self.registry = registry or CollectorRegistry()
        self.service_names = list(service_names)
        self.readiness = readiness
        self.add_servicers = add_servicers
        self.observability = ObservabilityInterceptor(self.registry)
        self.interceptors = [
            self.observability,
            ConcurrencyLimit(settings.max_concurrent_rpcs),
            DecodeInterceptor(),
            *interceptors,
        ]
        self.credentials = server_credentials(
            settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
        )
        self.port = 0
        self._serve_loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    # -- on the server's loop ------------------------------------------------------------------

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def _probe(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.readiness(), self.settings.readiness_timeout_seconds))
        except Exception:  # a dependency that errs or hangs is not ready
            return False

    async def _watch_readiness(self) -> None:
        last = None
        while True:
            ready = await self._probe()
            if ready != last:
                log.info("health", serving=ready)
                await self._set_serving(ready)
                last = ready
            await asyncio.sleep(1.0)

    async def _serve(self) -> None:
        settings = self.settings
        self._serve_loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # HTTP/2 limits per connection: streams open at once (beyond them a client's new
            # streams wait on its side, and one connection cannot take every RPC slot), and pings
            # without data (more than two too early and the connection is closed, GOAWAY).
            ("grpc.max_concurrent_streams", settings.max_streams_per_connection),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.http2.min_ping_interval_without_data_ms", 300_000),
        ]
        if settings.max_connection_age_seconds:
            options += [
                ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
                ("grpc.max_connection_age_grace_ms", int(settings.drain_seconds * 1000)),
            ]
        self.server = grpc.aio.server(interceptors=self.interceptors, options=options)
        self.add_servicers(self.server)
        self.observability.prepare(self.service_names)
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        address = f"{settings.host}:{settings.port}"
        if self.credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, self.credentials)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {address}")
        await self._set_serving(False)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        watcher = asyncio.create_task(self._watch_readiness())
        log.info("listening", address=f"{settings.host}:{self.port}", tls=self.credentials is not None)
        self._started.set()
        await self._stop_requested.wait()
        watcher.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(settings.drain_seconds)
        log.info("stopped")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._failure = exc
            log.exception("server failed")
        finally:
            self._started.set()

    # -- from any thread -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="grpc-server", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise RuntimeError(f"the server did not start: {self._failure}") from self._failure
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, addr=self.settings.host, registry=self.registry)

    def stop(self) -> None:
        """Report NOT_SERVING, refuse new RPCs, let in-flight ones finish within the drain time."""
        thread, stop = self._thread, self._stop_requested
        if thread is None or stop is None or not thread.is_alive():
            return
        assert self._serve_loop is not None
        self._serve_loop.call_soon_threadsafe(stop.set)
        thread.join()

    def serve_until_signal(self) -> None:
        done = threading.Event()

        def on_signal(signum, frame):
            log.info("signal", signal=signal.Signals(signum).name)
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not done.wait(1.0):
            if self._thread is not None and not self._thread.is_alive():
                raise SystemExit("the gRPC server stopped unexpectedly")
        self.stop()


def run_service(
    name: str, settings_class: type[GrpcSettings], build_server, argv: list[str] | None = None
) -> None:
    """A service's process: settings from its variables, logs, serve until SIGTERM."""
    prefix = settings_class.env_prefix()
    settings_help = [
        f"  {settings_class.env_name(field)} (default {info.default!r}): {info.description}"
        for field, info in settings_class.model_fields.items()
    ]
    parser = argparse.ArgumentParser(
        description=f"TagLLM {name}, configured by {prefix}* environment variables (docs/configuration.md)",
        epilog="\n".join(["settings:", *settings_help]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    try:
        settings = load_settings(settings_class)
    except ValueError as exc:  # a setting or a file it names: one line, no traceback
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_format)
    build_server(settings).serve_until_signal()
