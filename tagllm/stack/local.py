"""`tagllm up`: Triton, refiner, gateway (and metrics, Prometheus) as local processes."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tagllm.stack.processes import ManagedProcess
from tagllm.stack.triton import SOURCE_ROOT, TritonSettings, model_ready, triton_process


@dataclasses.dataclass(frozen=True)
class StackSettings:
    model_dir: Path
    run_dir: Path
    host: str = "127.0.0.1"
    gateway_port: int = 50051
    refiner_port: int = 50052
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    shared_prefix: bool = True
    log_format: str = "json"
    # Extra environment for the service processes (TAGLLM_GATEWAY_*, TAGLLM_REFINER_* ...).
    extra_env: tuple[tuple[str, str], ...] = ()

    @property
    def gateway_address(self) -> str:
        return f"{self.host}:{self.gateway_port}"

    @property
    def refiner_address(self) -> str:
        return f"{self.host}:{self.refiner_port}"

    @property
    def triton_grpc_address(self) -> str:
        return f"{self.host}:{self.triton_grpc_port}"

    def triton(self) -> TritonSettings:
        return TritonSettings(
            model_dir=self.model_dir,
            host=self.host,
            http_port=self.triton_http_port,
            grpc_port=self.triton_grpc_port,
            metrics_port=self.triton_metrics_port,
            shared_prefix=self.shared_prefix,
        )


def grpc_serving(address: str, service: str = "") -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return reply.status == health_pb2.HealthCheckResponse.SERVING


class LocalStack:
    """Starts every process, waits until each is healthy, and stops them all (also on failure)."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.processes: dict[str, ManagedProcess] = {}

    def _service(self, name: str, module: str, env: dict[str, str]) -> ManagedProcess:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")])
        )
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env)
        full_env.update(dict(self.settings.extra_env))
        log = self.settings.run_dir / "logs" / f"{name}.log"
        return ManagedProcess(name, [sys.executable, "-m", module], log, env=full_env)

    def start(self, timeout: float = 180.0) -> None:
        s = self.settings
        s.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            triton = triton_process(s.triton(), s.run_dir)
            refiner = self._service(
                "refiner",
                "services.refiner.server",
                {
                    "TAGLLM_REFINER_HOST": s.host,
                    "TAGLLM_REFINER_PORT": str(s.refiner_port),
                    "TAGLLM_REFINER_TRITON_URL": s.triton_grpc_address,
                    "TAGLLM_REFINER_LOG_FORMAT": s.log_format,
                },
            )
            gateway = self._service(
                "gateway",
                "services.gateway.server",
                {
                    "TAGLLM_GATEWAY_HOST": s.host,
                    "TAGLLM_GATEWAY_PORT": str(s.gateway_port),
                    "TAGLLM_GATEWAY_REFINER_ADDRESS": s.refiner_address,
                    "TAGLLM_GATEWAY_LOG_FORMAT": s.log_format,
                },
            )
            self.processes = {"triton": triton, "refiner": refiner, "gateway": gateway}
            for process in self.processes.values():
                process.start()
            deadline = time.monotonic() + timeout

            def left() -> float:
                return max(1.0, deadline - time.monotonic())

            triton.wait_until(lambda: model_ready(s.triton()), left(), "serving model mllm")
            refiner.wait_until(lambda: grpc_serving(s.refiner_address), left(), "healthy")
            gateway.wait_until(lambda: grpc_serving(s.gateway_address), left(), "healthy")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Front to back, so no service sees its dependency vanish while it still takes requests.
        for name in ("gateway", "refiner", "triton"):
            if name in self.processes:
                self.processes[name].stop()

    def endpoints(self) -> dict[str, str]:
        s = self.settings
        return {
            "gateway (gRPC, tagllm.v1.TaggingService)": s.gateway_address,
            "refiner (gRPC, tagllm.v1.RefinementService)": s.refiner_address,
            "triton (gRPC, KServe v2)": s.triton_grpc_address,
            "triton (HTTP)": f"http://{s.host}:{s.triton_http_port}",
            "triton metrics": f"http://{s.host}:{s.triton_metrics_port}/metrics",
            "logs": str(s.run_dir / "logs"),
        }

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
