"""Which model-server replicas exist: a fixed list, or every address of a DNS name, looked up
again and again.

A target is written as gRPC writes one:
- `host:port[,host:port...]`: these replicas, for good;
- `dns:///name:port`: every address of `name` (a Kubernetes headless Service has one per ready
  pod), through the system's resolver (search domains, /etc/hosts);
- `dns://server[:port]/name:port`: the same, asking that name server (53 when no port).

`ReplicaWatcher` looks the name up every `refresh_seconds` and reports each new set. A name that
does not exist, or has no address, means no replica; a lookup that fails (a timeout, a refused
query) keeps the last set: a flaky resolver must not empty a healthy pool.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger("tagllm.replicas")

DNS_SCHEME = "dns:"


class LookupFailed(RuntimeError):
    """The name could not be looked up now (unlike a name with no address)."""


@dataclasses.dataclass(frozen=True)
class Target:
    fixed: tuple[str, ...] = ()
    name: str = ""
    port: int = 0
    nameserver: tuple[str, int] | None = None

    @property
    def dynamic(self) -> bool:
        return bool(self.name)


def _host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"{text!r}: a port is needed (host:port)")
        return text, default_port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected host:port")
    return host.strip("[]"), int(port)


def parse_target(text: str) -> Target:
    text = text.strip()
    if not text.startswith(DNS_SCHEME):
        fixed = tuple(part.strip() for part in text.split(","))
        if not fixed or not all(fixed):
            raise ValueError("at least one model-server address is needed")
        return Target(fixed=fixed)
    rest = text[len(DNS_SCHEME) :]
    if not rest.startswith("//"):
        raise ValueError(f"{text!r}: expected dns:///name:port or dns://server/name:port")
    authority, _, name = rest[2:].partition("/")
    host, port = _host_port(name)
    nameserver = _host_port(authority, 53) if authority else None
    return Target(name=host, port=port, nameserver=nameserver)


def resolve(target: Target, timeout: float = 2.0) -> list[str]:
    """The target's replicas now, as sorted "ip:port" strings; raises LookupFailed."""
    if not target.dynamic:
        return list(target.fixed)
    if target.nameserver is None:
        try:
            found = socket.getaddrinfo(target.name, target.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return []
            raise LookupFailed(f"{target.name}: {exc}") from exc
        addresses = {str(info[4][0]) for info in found}
    else:
        addresses = _ask(target, timeout)
    return sorted(_join(address, target.port) for address in addresses)


def _ask(target: Target, timeout: float) -> set[str]:
    import dns.exception
    import dns.resolver

    assert target.nameserver is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [target.nameserver[0]]
    resolver.port = target.nameserver[1]
    resolver.lifetime = timeout
    addresses: set[str] = set()
    for kind in ("A", "AAAA"):
        try:
            addresses |= {record.to_text() for record in resolver.resolve(target.name, kind)}
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{target.name} at {target.nameserver[0]}: {exc}") from exc
    return addresses


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class ReplicaWatcher:
    """Looks a dynamic target up every `refresh_seconds` on a thread of its own and calls
    `on_change(replicas)` with each set that differs from the last."""

    def __init__(
        self, target: Target, on_change: Callable[[list[str]], None], refresh_seconds: float = 5.0
    ) -> None:
        self.target = target
        self.on_change = on_change
        self.refresh_seconds = refresh_seconds
        self._stop = threading.Event()
        self._last: list[str] | None = None
        self._thread = threading.Thread(target=self._loop, name="replica-watcher", daemon=True)

    def refresh(self) -> list[str] | None:
        """Looks the name up once; the current set (None while none was ever found)."""
        try:
            replicas = resolve(self.target, timeout=max(0.5, min(5.0, self.refresh_seconds)))
        except LookupFailed as exc:
            log.warning("replica lookup failed", error=str(exc), kept=self._last)
            return self._last
        if replicas != self._last:
            log.info("replicas", name=self.target.name, replicas=replicas)
            self._last = replicas
            self.on_change(replicas)
        return self._last

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
