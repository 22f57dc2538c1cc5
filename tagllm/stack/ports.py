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


class PortBusy(RuntimeError):
    """A port the stack needs is taken; the message names it and the flag that moves it."""


def check_free(host: str, ports: dict[str, int]) -> None:
    """Raises PortBusy for the first of `ports` (setting name -> port) something listens on."""
    for field, port in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                flag = "--" + field.replace("_", "-")
                raise PortBusy(
                    f"port {port} on {host} ({field.removesuffix('_port').replace('_', ' ')}) is already in "
                    f"use: is another stack running? Stop it, or choose another port with {flag}"
                ) from None
