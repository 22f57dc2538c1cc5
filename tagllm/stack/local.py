"""`tagllm up`: Triton, refiner, gateway (and metrics, Prometheus) as local processes."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tagllm import ports
from tagllm.client import channel_credentials, open_channel
from tagllm.resources import PACKAGE_ROOT
from tagllm.settings import SERVICES, GrpcSettings
from tagllm.stack.certs import LocalPKI, create_pki
from tagllm.stack.ports import PORT_FIELDS, check_free
from tagllm.stack.processes import ManagedProcess
from tagllm.stack.prometheus import ScrapeTargets, prometheus_process, prometheus_ready
from tagllm.stack.triton import TritonSettings, model_ready, triton_process


@dataclasses.dataclass(frozen=True)
class StackSettings:
    model_dir: Path
    run_dir: Path
    host: str = "127.0.0.1"
    gateway_port: int = ports.GATEWAY
    refiner_port: int = ports.REFINER
    metrics_port: int = ports.METRICS
    metrics_http_port: int = ports.METRICS_HTTP
    gateway_metrics_port: int = ports.GATEWAY_METRICS
    refiner_metrics_port: int = ports.REFINER_METRICS
    triton_http_port: int = ports.TRITON_HTTP
    triton_grpc_port: int = ports.TRITON_GRPC
    triton_metrics_port: int = ports.TRITON_METRICS
    shared_prefix: bool = True
    # Requests the model server batches together (1: each alone); see TritonSettings.
    max_batch_size: int = 8
    # Model instances in the model server and compute threads of each; see TritonSettings.
    model_instances: int = 1
    model_threads: int = 0
    model_backend: str = "transformers"
    prometheus: bool = False
    prometheus_port: int = ports.PROMETHEUS
    scrape_interval: str = "5s"
    log_format: str = "json"
    # Further settings of a service process by its name, beyond the stack's wiring: for example
    # {"gateway": {"cache_entries": 0}} (fields of tagllm.settings.GatewaySettings).
    service_settings: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    # TLS everywhere from a private CA made in run_dir/tls: the gateway's port (clients verify it
    # with ca.pem) and mutual TLS on every internal hop, Triton's gRPC port included.
    tls: bool = False

    @property
    def pki_dir(self) -> Path:
        return self.run_dir / "tls"

    @property
    def gateway_address(self) -> str:
        return f"{self.host}:{self.gateway_port}"

    @property
    def refiner_address(self) -> str:
        return f"{self.host}:{self.refiner_port}"

    @property
    def metrics_address(self) -> str:
        return f"{self.host}:{self.metrics_port}"

    @property
    def triton_grpc_address(self) -> str:
        return f"{self.host}:{self.triton_grpc_port}"

    def scrape_targets(self) -> ScrapeTargets:
        return ScrapeTargets(
            metrics_service=f"{self.host}:{self.metrics_http_port}",
            gateway=f"{self.host}:{self.gateway_metrics_port}",
            refiner=f"{self.host}:{self.refiner_metrics_port}",
            triton=f"{self.host}:{self.triton_metrics_port}",
        )

    def triton(self) -> TritonSettings:
        pki = self.pki_dir
        return TritonSettings(
            tls=(pki / "triton.pem", pki / "triton-key.pem", pki / "ca.pem") if self.tls else None,
            probe_identity=(pki / "client.pem", pki / "client-key.pem") if self.tls else None,
            model_dir=self.model_dir,
            host=self.host,
            http_port=self.triton_http_port,
            grpc_port=self.triton_grpc_port,
            metrics_port=self.triton_metrics_port,
            shared_prefix=self.shared_prefix,
            max_batch_size=self.max_batch_size,
            instances=self.model_instances,
            threads=self.model_threads,
            backend=self.model_backend,
        )


def grpc_serving(address: str, service: str = "", credentials: grpc.ChannelCredentials | None = None) -> bool:
    with open_channel(address, credentials) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return reply.status == health_pb2.HealthCheckResponse.SERVING


class LocalStack:
    """Starts every process, waits until each is healthy, and stops them all (also on failure)."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.processes: dict[str, ManagedProcess] = {}
        self.pki: LocalPKI | None = None

    def client_credentials(self) -> grpc.ChannelCredentials | None:
        """What a client of this stack's gateway needs: None without TLS."""
        if self.pki is None:
            return None
        return channel_credentials(
            str(self.pki.ca), str(self.pki["client"].cert), str(self.pki["client"].key)
        )

    def service_settings(self, name: str) -> GrpcSettings:
        """The settings of service process `name` (gateway, refiner, metrics): its ports, the
        addresses of what it calls, its files of the private CA under `tls`, then the stack's
        `service_settings[name]`."""
        s = self.settings
        wirings: dict[str, dict[str, Any]] = {
            "gateway": {
                "port": s.gateway_port,
                "metrics_port": s.gateway_metrics_port,
                "refiner_address": s.refiner_address,
            },
            "refiner": {
                "port": s.refiner_port,
                "metrics_port": s.refiner_metrics_port,
                "triton_url": s.triton_grpc_address,
                "metrics_address": s.metrics_address,
            },
            "metrics": {"port": s.metrics_port, "metrics_port": s.metrics_http_port},
        }
        wiring = wirings[name]
        if self.pki is not None:
            identity = self.pki[name]
            wiring |= {
                "tls_cert_file": str(identity.cert),
                "tls_key_file": str(identity.key),
                "tls_ca_file": str(self.pki.ca),
                # The local CA's certificates carry both usages: one file serves as either identity.
                "tls_client_cert_file": str(identity.cert),
                "tls_client_key_file": str(identity.key),
            }
            if name != "gateway":  # the public port takes no client certificate (callers use API keys)
                wiring["tls_client_ca_file"] = str(self.pki.ca)
        settings_class, _ = SERVICES[name]
        return settings_class(
            **{"host": s.host, "log_format": s.log_format, **wiring, **s.service_settings.get(name, {})}
        )

    def service_process(self, name: str) -> ManagedProcess:
        _, module = SERVICES[name]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.service_settings(name).to_env())
        log = self.settings.run_dir / "logs" / f"{name}.log"
        return ManagedProcess(name, [sys.executable, "-m", module], log, env=env)

    def start(self, timeout: float = 180.0) -> None:
        s = self.settings
        check_free(s.host, {f: getattr(s, f) for f in PORT_FIELDS if f != "prometheus_port" or s.prometheus})
        s.run_dir.mkdir(parents=True, exist_ok=True)
        if s.tls:
            self.pki = create_pki(s.pki_dir, hosts=tuple(dict.fromkeys(("localhost", "127.0.0.1", s.host))))
        try:
            triton = triton_process(s.triton(), s.run_dir)
            metrics, refiner, gateway = (
                self.service_process(name) for name in ("metrics", "refiner", "gateway")
            )
            self.processes = {"triton": triton, "metrics": metrics, "refiner": refiner, "gateway": gateway}
            if s.prometheus:
                self.processes["prometheus"] = prometheus_process(
                    s.scrape_targets(), s.run_dir, s.host, s.prometheus_port, s.scrape_interval
                )
            for process in self.processes.values():
                process.start()
            deadline = time.monotonic() + timeout

            def left() -> float:
                return max(1.0, deadline - time.monotonic())

            triton.wait_until(lambda: model_ready(s.triton()), left(), "serving model mllm")
            credentials = self.client_credentials()
            metrics.wait_until(lambda: grpc_serving(s.metrics_address, "", credentials), left(), "healthy")
            refiner.wait_until(lambda: grpc_serving(s.refiner_address, "", credentials), left(), "healthy")
            gateway.wait_until(lambda: grpc_serving(s.gateway_address, "", credentials), left(), "healthy")
            if s.prometheus:
                self.processes["prometheus"].wait_until(
                    lambda: prometheus_ready(s.host, s.prometheus_port), left(), "ready"
                )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Front to back, so no service sees its dependency vanish while it still takes requests.
        for name in ("prometheus", "gateway", "refiner", "metrics", "triton"):
            if name in self.processes:
                self.processes[name].stop()

    def endpoints(self) -> dict[str, str]:
        s = self.settings
        return {
            "gateway (gRPC, tagllm.v1.TaggingService)": s.gateway_address,
            "refiner (gRPC, tagllm.internal.v1.RefinementService)": s.refiner_address,
            "triton (gRPC, KServe v2)": s.triton_grpc_address,
            **({} if s.tls else {"triton (HTTP)": f"http://{s.host}:{s.triton_http_port}"}),
            **({"CA of every TLS port": str(self.pki.ca)} if self.pki else {}),
            "metrics service (gRPC, tagllm.internal.v1.MetricsService)": s.metrics_address,
            "tagging metrics": f"http://{s.host}:{s.metrics_http_port}/metrics",
            "gateway / refiner metrics": (
                f"http://{s.host}:{s.gateway_metrics_port}/metrics, http://{s.host}:{s.refiner_metrics_port}/metrics"
            ),
            "triton metrics": f"http://{s.host}:{s.triton_metrics_port}/metrics",
            **({"prometheus": f"http://{s.host}:{s.prometheus_port}"} if s.prometheus else {}),
            "logs": str(s.run_dir / "logs"),
        }

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
