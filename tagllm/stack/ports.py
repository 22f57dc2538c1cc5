"""Free loopback ports for a stack that must not collide with another one."""

from __future__ import annotations

import socket

PORT_FIELDS = (
    "gateway_port",
    "refiner_port",
    "metrics_port",
    "metrics_http_port",
    "gateway_metrics_port",
    "refiner_metrics_port",
    "triton_http_port",
    "triton_grpc_port",
    "triton_metrics_port",
    "prometheus_port",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports() -> dict[str, int]:
    """A free port for every port setting of the local stack."""
    return {field: free_port() for field in PORT_FIELDS}
