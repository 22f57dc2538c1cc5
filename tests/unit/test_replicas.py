"""Model-server replicas: targets, DNS lookups against a real (loopback) DNS server, the watcher."""

import socket
import threading

import pytest

from tagllm.mllm.replicas import LookupFailed, ReplicaWatcher, Target, parse_target, resolve
from tests.dns_server import DnsServer


@pytest.mark.parametrize(
    "text, target",
    [
        ("127.0.0.1:8001", Target(fixed=("127.0.0.1:8001",))),
        ("a:1, b:2", Target(fixed=("a:1", "b:2"))),
        ("dns:///tagllm-model-server:8001", Target(name="tagllm-model-server", port=8001)),
        (
            "dns://10.0.0.10/triton.svc:8001",
            Target(name="triton.svc", port=8001, nameserver=("10.0.0.10", 53)),
        ),
        ("dns://127.0.0.1:5353/triton:9", Target(name="triton", port=9, nameserver=("127.0.0.1", 5353))),
    ],
)
def test_targets_are_read_as_grpc_writes_them(text, target):
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["", " , ", "dns:/x:1", "dns:///name", "dns:///name:0", "dns:///:80"])
def test_malformed_targets_are_refused(text):
    with pytest.raises(ValueError):
        parse_target(text)


def test_every_address_of_the_name_is_a_replica():
    with DnsServer() as server:
        server.set("triton.tagllm.test", ["127.0.0.3", "127.0.0.2"])
        target = parse_target(f"dns://{server.authority}/triton.tagllm.test:8001")
        assert resolve(target) == ["127.0.0.2:8001", "127.0.0.3:8001"]


def test_a_name_without_addresses_means_no_replica():
    with DnsServer() as server:
        target = parse_target(f"dns://{server.authority}/absent.tagllm.test:8001")
        assert resolve(target) == []


def test_the_system_resolver_serves_dns_targets_without_a_server():
    assert resolve(parse_target("dns:///localhost:8001")) in (
        ["127.0.0.1:8001"],
        ["127.0.0.1:8001", "[::1]:8001"],
    )


def test_a_lookup_that_fails_is_not_an_empty_answer():
    # A UDP port where nothing answers: the query times out.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        target = parse_target(f"dns://127.0.0.1:{silent.getsockname()[1]}/triton:8001")
        with pytest.raises(LookupFailed):
            resolve(target, timeout=0.3)
    finally:
        silent.close()


def test_the_watcher_reports_each_new_set_and_keeps_the_last_when_lookups_fail():
    with DnsServer() as server:
        server.set("triton.tagllm.test", ["127.0.0.2"])
        seen: list[list[str]] = []
        changed = threading.Event()

        def on_change(replicas):
            seen.append(replicas)
            changed.set()

        watcher = ReplicaWatcher(
            parse_target(f"dns://{server.authority}/triton.tagllm.test:8001"), on_change, refresh_seconds=0.05
        )
        assert watcher.refresh() == ["127.0.0.2:8001"]
        watcher.start()
        try:
            changed.clear()
            server.set("triton.tagllm.test", ["127.0.0.2", "127.0.0.3"])  # a replica added
            assert changed.wait(5)
            assert seen[-1] == ["127.0.0.2:8001", "127.0.0.3:8001"]
            changed.clear()
            server.set("triton.tagllm.test", ["127.0.0.3"])  # one gone
            assert changed.wait(5)
            assert seen[-1] == ["127.0.0.3:8001"]
        finally:
            watcher.stop()
    # The server is gone: lookups fail, the last set stays.
    assert watcher.refresh() == ["127.0.0.3:8001"]
    assert seen == [["127.0.0.2:8001"], ["127.0.0.2:8001", "127.0.0.3:8001"], ["127.0.0.3:8001"]]
