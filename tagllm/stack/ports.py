"""Free loopback ports for a stack that must not collide with another one."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from tagllm.ports import STACK_PORTS

PORT_FIELDS = tuple(STACK_PORTS)


_given: set[int] = set()
_random = random.SystemRandom()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on, not handed out before by this process, and below the
    kernel's ephemeral range: there, any outgoing connection (or another bind to port 0) may take
    the port between this check and the server's own bind (seen: Triton's HTTP port)."""
    floor = _ephemeral_floor()
    for _ in range(200):
        port = _random.randrange(10_000, floor) if floor > 11_000 else 0
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        _given.add(port)
        return port
    raise RuntimeError("no free loopback port found")


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
