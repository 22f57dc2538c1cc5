"""The default port of every listener, in one table: the services' settings, `tagllm up` and its
flags, the Triton launcher and the clients take their defaults from here."""

from __future__ import annotations

GATEWAY = 50051
REFINER = 50052
METRICS = 50053
METRICS_HTTP = 9464
GATEWAY_METRICS = 9465
REFINER_METRICS = 9466
TRITON_HTTP = 8000
TRITON_GRPC = 8001
TRITON_METRICS = 8002
PROMETHEUS = 9090

# The local stack's port settings (`tagllm up --gateway-port` ...), with what listens there.
STACK_PORTS: dict[str, tuple[int, str]] = {
    "gateway_port": (GATEWAY, "gateway, gRPC (tagllm.v1.TaggingService)"),
    "refiner_port": (REFINER, "refiner, gRPC"),
    "metrics_port": (METRICS, "metrics service, gRPC"),
    "metrics_http_port": (METRICS_HTTP, "tagging metrics (/metrics of the metrics service)"),
    "gateway_metrics_port": (GATEWAY_METRICS, "the gateway's own /metrics"),
    "refiner_metrics_port": (REFINER_METRICS, "the refiner's own /metrics"),
    "triton_http_port": (TRITON_HTTP, "Triton, HTTP (off with --tls)"),
    "triton_grpc_port": (TRITON_GRPC, "Triton, gRPC"),
    "triton_metrics_port": (TRITON_METRICS, "Triton's /metrics"),
    "prometheus_port": (PROMETHEUS, "Prometheus (with --prometheus)"),
}


def loopback(port: int) -> str:
    return f"127.0.0.1:{port}"
