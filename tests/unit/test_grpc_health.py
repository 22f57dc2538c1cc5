"""Health of every service: readiness waits for dependencies, liveness only for the process."""

from __future__ import annotations

from grpc_health.v1 import health_pb2

from services.common.grpc_server import LIVENESS_SERVICE, GrpcServer
from tagllm.internal.v1 import metrics_pb2
from tagllm.settings import GrpcSettings
from tests.conftest import health_status

SERVICE = metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name


async def never_ready() -> bool:
    return False


def _status(port: int, service: str) -> int:
    return health_status(f"127.0.0.1:{port}", service)


def test_liveness_serves_while_a_dependency_keeps_readiness_down():
    server = GrpcServer(GrpcSettings(drain_seconds=0), [SERVICE], lambda s: None, readiness=never_ready)
    server.start()
    try:
        assert _status(server.port, LIVENESS_SERVICE) == health_pb2.HealthCheckResponse.SERVING
        assert _status(server.port, "") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert _status(server.port, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        server.stop()
