"""Scale-out as on Kubernetes, with real processes on loopback: model servers and refiners are
found through DNS names served by a DNS server the test runs (as a cluster's DNS serves headless
Services, one address per ready pod), two gateways share a vocabulary directory (a volume).

Shown: traffic reaches every model server and every refiner; each image's calls stay on one
model server (its prefix cache computes each image once); a vocabulary registered through one
gateway is used through the other, and after both restart; during a run of tagging, a model
server is killed and another added, and a refiner added: every image is answered once, and the
new replicas take traffic.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tagllm.client import TaggingClient
from tagllm.stack.processes import ManagedProcess
from tagllm.stack.triton import TritonSettings, model_ready, triton_process
from tagllm.v1 import tagging_pb2
from tests.conftest import free_port, png, scraped_total
from tests.dns_server import DnsServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRITON_NAME = "model-server.tagllm.test"
REFINER_NAME = "refiner.tagllm.test"
VOCABULARY = """
name: pets
version: "1"
categories:
  - {name: cat, super_category: animal}
  - {name: dog, super_category: animal}
  - {name: sofa, super_category: furniture}
groups:
  - {name: animals, categories: [cat, dog]}
  - {name: home, categories: [sofa]}
"""


def _free_everywhere(hosts: list[str]) -> int:
    """A port free on every one of `hosts` (replicas of one Service share their port)."""
    import socket

    while True:
        port = free_port()
        try:
            for host in hosts:
                with socket.socket() as probe:
                    probe.bind((host, port))
            return port
        except OSError:
            continue


class Cluster:
    """Model servers, refiners and gateways, each a process of its own."""

    def __init__(self, model_dir: Path, run_dir: Path, dns: DnsServer) -> None:
        self.model_dir, self.run_dir, self.dns = model_dir, run_dir, dns
        self.triton_hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.6"]
        self.refiner_hosts = ["127.0.0.4", "127.0.0.5", "127.0.0.7"]
        self.triton_ports = {k: _free_everywhere(self.triton_hosts) for k in ("http", "grpc", "metrics")}
        self.refiner_port = _free_everywhere(self.refiner_hosts)
        self.refiner_metrics_port = _free_everywhere(self.refiner_hosts)
        self.tritons: dict[str, ManagedProcess] = {}
        self.refiners: dict[str, ManagedProcess] = {}
        self.gateways: dict[str, tuple[ManagedProcess, int]] = {}
        self.clients: dict[str, TaggingClient] = {}
        self.vocabularies = run_dir / "vocabularies"

    def triton_settings(self, host: str) -> TritonSettings:
        p = self.triton_ports
        return TritonSettings(self.model_dir, host=host, http_port=p["http"], grpc_port=p["grpc"],
                              metrics_port=p["metrics"], threads=1)  # fmt: skip

    def start_triton(self, host: str) -> None:
        settings = self.triton_settings(host)
        process = triton_process(settings, self.run_dir / f"triton-{host}")
        process.start()
        self.tritons[host] = process
        process.wait_until(lambda: model_ready(settings), 180, "ready")

    def triton_metric(self, host: str, name: str) -> float:
        return scraped_total(f"http://{host}:{self.triton_ports['metrics']}/metrics", name)

    def _service(self, name: str, module: str, env: dict[str, str]) -> ManagedProcess:
        environment = {**os.environ, "TAGLLM_LOG_FORMAT": "console", "GRPC_DNS_RESOLVER": "ares", **env}
        process = ManagedProcess(name, [sys.executable, "-m", module], self.run_dir / "logs" / f"{name}.log",
                                 env=environment)  # fmt: skip
        process.start()
        return process

    def start_refiner(self, host: str) -> None:
        self.refiners[host] = self._service(f"refiner-{host}", "services.refiner.server", {
            "TAGLLM_REFINER_HOST": host,
            "TAGLLM_REFINER_PORT": str(self.refiner_port),
            "TAGLLM_REFINER_METRICS_PORT": str(self.refiner_metrics_port),
            "TAGLLM_REFINER_TRITON_URL": f"dns://{self.dns.authority}/{TRITON_NAME}:{self.triton_ports['grpc']}",
            "TAGLLM_REFINER_TRITON_REFRESH_SECONDS": "0.5",
            "TAGLLM_REFINER_METRICS_ADDRESS": "",
            # Gateways resolve the refiners' name again when a connection ends.
            "TAGLLM_REFINER_MAX_CONNECTION_AGE_SECONDS": "2",
            "TAGLLM_REFINER_DRAIN_SECONDS": "30",
        })  # fmt: skip
        self._wait_serving(self.refiners[host], f"{host}:{self.refiner_port}")

    def _wait_serving(self, process: ManagedProcess, address: str) -> None:
        channel = grpc.insecure_channel(address)
        health = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        request = health_pb2.HealthCheckRequest()
        try:
            process.wait_until(lambda: health.Check(request, timeout=2).status == serving, 120, "serving")
        finally:
            channel.close()

    def refiner_handled(self, host: str) -> float:
        url = f"http://{host}:{self.refiner_metrics_port}/metrics"
        return scraped_total(url, "tagllm_grpc_server_handled_total", 'grpc_method="Refine"')

    def start_gateway(self, name: str, port: int | None = None) -> int:
        port = port or free_port()
        process = self._service(f"gateway-{name}", "services.gateway.server", {
            "TAGLLM_GATEWAY_PORT": str(port),
            "TAGLLM_GATEWAY_REFINER_ADDRESS": f"dns://{self.dns.authority}/{REFINER_NAME}:{self.refiner_port}",
            "TAGLLM_GATEWAY_VOCABULARY_DIR": str(self.vocabularies),
            "TAGLLM_GATEWAY_CACHE_ENTRIES": "0",
            "TAGLLM_GATEWAY_REFINER_RESOLVE_SECONDS": "1",
        })  # fmt: skip
        self.gateways[name] = (process, port)
        self.clients.setdefault(name, TaggingClient(f"127.0.0.1:{port}"))
        self._wait_serving(process, f"127.0.0.1:{port}")
        return port

    def client(self, gateway: str) -> TaggingClient:
        return self.clients[gateway]

    def stop(self) -> None:
        for client in self.clients.values():
            client.close()
        for process, _ in self.gateways.values():
            process.stop()
        for process in [*self.refiners.values(), *self.tritons.values()]:
            process.stop()


def _images(count: int, offset: int) -> list[bytes]:
    return [
        png(64 + (offset + i) % 40, 48 + (offset + i) // 40, ((offset + i) * 37 % 256, 90, 160))
        for i in range(count)
    ]


def _tag_all(
    cluster: Cluster, images: list[bytes], vocabulary: str, answered: dict[int, int], on_progress=None
):
    """Tags every image once, through both gateways in turn, four at a time."""
    lock = threading.Lock()

    def one(index: int) -> None:
        gateway = "a" if index % 2 else "b"
        cluster.client(gateway).tag(images[index], vocabulary=vocabulary)
        with lock:
            answered[index] = answered.get(index, 0) + 1
            if on_progress is not None:
                on_progress(len(answered))

    with futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(images))))


@pytest.fixture
def cluster(qwen_dir, tmp_path):
    with DnsServer() as dns:
        cluster = Cluster(qwen_dir, tmp_path, dns)
        dns.set(TRITON_NAME, ["127.0.0.2"])
        dns.set(REFINER_NAME, ["127.0.0.4", "127.0.0.5"])
        try:
            for host in cluster.triton_hosts[:2]:
                cluster.start_triton(host)
            for host in cluster.refiner_hosts[:2]:
                cluster.start_refiner(host)
            cluster.start_gateway("a")
            cluster.start_gateway("b")
            yield cluster
        finally:
            cluster.stop()


def test_replicas_found_by_dns_share_the_load_keep_affinity_and_survive_changes(cluster):
    dns = cluster.dns
    # A vocabulary registered through one gateway is used through the other.
    cluster.client("a").stub.RegisterVocabulary(tagging_pb2.RegisterVocabularyRequest(yaml=VOCABULARY))
    assert cluster.client("b").tag(png(), vocabulary="pets").result.version.vocabulary == "pets"

    # The second model server appears in DNS: the refiners find it and spread images over both.
    dns.set(TRITON_NAME, ["127.0.0.2", "127.0.0.3"])
    time.sleep(2)
    answered: dict[int, int] = {}
    images = _images(24, 0)
    _tag_all(cluster, images, "pets", answered)
    assert answered == {i: 1 for i in range(24)}
    calls = {
        host: cluster.triton_metric(host, "nv_inference_request_success") for host in cluster.triton_hosts[:2]
    }
    assert all(count > 0 for count in calls.values()), calls
    # Affinity: the prefix of each image was computed once, on one server, and reused for its
    # later calls there (the default strategy asks several questions per image).
    misses = sum(
        cluster.triton_metric(h, "tagllm_prefix_cache_misses_total") for h in cluster.triton_hosts[:2]
    )
    hits = sum(cluster.triton_metric(h, "tagllm_prefix_cache_hits_total") for h in cluster.triton_hosts[:2])
    assert misses == 24 + 1  # the 24 images and the one tagged after registering
    assert hits > 0
    assert all(cluster.refiner_handled(h) > 0 for h in cluster.refiner_hosts[:2])

    # During a run: the first model server is killed, a third added, a third refiner added.
    cluster.start_triton("127.0.0.6")
    cluster.start_refiner("127.0.0.7")
    changed = threading.Event()

    def change(count: int) -> None:
        if count == 8 and not changed.is_set():
            changed.set()
            os.killpg(cluster.tritons["127.0.0.2"].process.pid, signal.SIGKILL)
            dns.set(TRITON_NAME, ["127.0.0.3", "127.0.0.6"])
            dns.set(REFINER_NAME, ["127.0.0.4", "127.0.0.5", "127.0.0.7"])

    answered = {}
    _tag_all(cluster, _images(48, 100), "pets", answered, change)
    assert changed.is_set()
    assert answered == {i: 1 for i in range(48)}  # every image once, none failed
    assert cluster.triton_metric("127.0.0.6", "nv_inference_request_success") > 0
    assert cluster.refiner_handled("127.0.0.7") > 0

    # Both gateways restart: the registered vocabulary is still known to each.
    for name in ("a", "b"):
        process, port = cluster.gateways[name]
        process.stop()
        cluster.start_gateway(name, port)
    listed = cluster.client("b").stub.ListVocabularies(tagging_pb2.ListVocabulariesRequest())
    assert "pets" in {v.name for v in listed.vocabularies}
    cluster.client("a").tag(png(), vocabulary="pets")
