"""One small gRPC server class for every service: interceptors, health, reflection, drain."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, disable_created_metrics, start_http_server

from services.common.interceptors import ObservabilityInterceptor
from services.common.logs import configure_logging, get_logger
from services.common.settings import GrpcSettings, load_settings

log = get_logger("grpc")
# One sample per counter, not two: the *_created series only double what Prometheus stores.
disable_created_metrics()


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
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        # Each server exports its own gRPC metrics (and the caller's, if it shares the registry).
        self.registry = registry or CollectorRegistry()
        self.service_names = list(service_names)
        self.readiness = readiness
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        observability = ObservabilityInterceptor(self.registry)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
            interceptors=[observability, *interceptors],
            options=options,
        )
        add_servicers(self.server)
        observability.prepare(self.service_names)
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
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, addr=self.settings.host, registry=self.registry)
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


def abort_with(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """Ends the RPC with `code`; logged with the request id."""
    log.info("rejected", code=code.name, message=message)
    context.abort(code, message)
    raise AssertionError("grpc's abort raises")


def run_service(name: str, settings_class, prefix: str, build_server, argv: list[str] | None = None) -> None:
    """A service's process: settings from `prefix`* variables, logs, serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=f"TagLLM {name} (settings: {prefix}* environment variables)")
    parser.parse_args(argv)
    settings = load_settings(settings_class, prefix)
    configure_logging(settings.log_format)
    build_server(settings).serve_until_signal()
