"""A small authoritative DNS server on loopback (UDP), for tests of DNS-based discovery.

It answers A queries for the names it holds (changeable while it runs), NXDOMAIN for others,
as a cluster's DNS answers for a headless Service: one A record per ready pod.
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self._socket.settimeout(0.2)
        self.address = self._socket.getsockname()
        self._records: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.queries = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def authority(self) -> str:
        """The `server:port` part of a dns://server:port/name:port target."""
        return f"{self.address[0]}:{self.address[1]}"

    def set(self, name: str, addresses: list[str]) -> None:
        """`name` resolves to `addresses` from now on (an empty list: the name does not exist)."""
        with self._lock:
            self._records[name.rstrip(".").lower()] = list(addresses)

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            self.queries += 1
            self._socket.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        with self._lock:
            addresses = self._records.get(name)
        if not addresses:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 1, dns.rdataclass.IN, dns.rdatatype.A, addresses)
            )
        return response
