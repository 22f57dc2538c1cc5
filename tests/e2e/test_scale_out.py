"""Scale-out as on Kubernetes, with real processes on loopback: model servers and refiners are
found through DNS names served by a DNS server the test runs (as a cluster's DNS serves headless
Services, one address per ready pod), two gateways share a vocabulary directory (a volume).

Shown: traffic reaches every model server and every refiner; each image's calls stay on one
model server (its prefix cache computes each image once); a vocabulary registered through one
gateway is used through the other, and after both restart; during a run of tagging, a model
server is killed and another added, and a refiner added: every image is answered once (by the
gateways' and refiners' own counts), and the new replicas take traffic. With bounded model
queues: a stalled model server sheds images to the other one, a burst beyond every queue is
refused at once (RESOURCE_EXHAUSTED with RetryInfo), and an annotate run that meets full queues
retries as told and loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from tagllm.client import TaggingClient, retry_delay
from tagllm.datasets.synthetic import generate
from tagllm.stack.processes import ManagedProcess
from tagllm.stack.triton import TritonSettings, model_ready, triton_process
from tagllm.v1 import tagging_pb2
from tests.conftest import SERVING, free_port, health_status, png, run_cli, scraped_total, wait_until
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

    def __init__(
        self, model_dir: Path, run_dir: Path, dns: DnsServer, max_queue_size: int = 64,
        refiner_env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.model_dir, self.run_dir, self.dns = model_dir, run_dir, dns
        self.max_queue_size = max_queue_size
        self.refiner_env = refiner_env or {}
        self.triton_hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.6"]
        self.refiner_hosts = ["127.0.0.4", "127.0.0.5", "127.0.0.7"]
        self.triton_ports = {k: _free_everywhere(self.triton_hosts) for k in ("http", "grpc", "metrics")}
        self.refiner_port = _free_everywhere(self.refiner_hosts)
        self.refiner_metrics_port = _free_everywhere(self.refiner_hosts)
        self.tritons: dict[str, ManagedProcess] = {}
        self.refiners: dict[str, ManagedProcess] = {}
        self.gateways: dict[str, tuple[ManagedProcess, int]] = {}
        self.gateway_metrics_ports: dict[str, int] = {}
        self.clients: dict[str, TaggingClient] = {}
        self.vocabularies = run_dir / "vocabularies"

    def triton_settings(self, host: str) -> TritonSettings:
        p = self.triton_ports
        return TritonSettings(self.model_dir, host=host, http_port=p["http"], grpc_port=p["grpc"],
                              metrics_port=p["metrics"], threads=1,
                              max_queue_size=self.max_queue_size)  # fmt: skip

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
            **self.refiner_env,
        })  # fmt: skip
        self._wait_serving(self.refiners[host], f"{host}:{self.refiner_port}")

    def _wait_serving(self, process: ManagedProcess, address: str) -> None:
        process.wait_until(lambda: health_status(address) == SERVING, 120, "serving")

    def model_servers_known(self, host: str) -> float:
        """How many model servers the refiner on `host` sends requests to (its own gauge)."""
        url = f"http://{host}:{self.refiner_metrics_port}/metrics"
        return scraped_total(url, "tagllm_model_server_replicas")

    def refiner_handled(self, host: str, code: str = "") -> float:
        url = f"http://{host}:{self.refiner_metrics_port}/metrics"
        code_label = f'grpc_code="{code}",' if code else ""  # exported in the labels' name order
        return scraped_total(url, "tagllm_grpc_server_handled_total", f'{code_label}grpc_method="Refine"')

    def answered(self) -> dict[str, float]:
        """RPCs the servers themselves count as completed: Tag calls of every gateway, Refine
        calls of every refiner, in all and with status OK."""
        counts = {"Tag": 0.0, "Tag OK": 0.0, "Refine": 0.0, "Refine OK": 0.0}
        for name in self.gateways:
            url = f"http://127.0.0.1:{self.gateway_metrics_ports[name]}/metrics"
            for code, key in (("", "Tag"), ('grpc_code="OK",', "Tag OK")):
                counts[key] += scraped_total(
                    url, "tagllm_grpc_server_handled_total", f'{code}grpc_method="Tag"'
                )
        for host in self.refiners:
            counts["Refine"] += self.refiner_handled(host)
            counts["Refine OK"] += self.refiner_handled(host, "OK")
        return counts

    def start_gateway(self, name: str, port: int | None = None) -> int:
        port = port or free_port()
        metrics_port = self.gateway_metrics_ports.setdefault(name, free_port())
        process = self._service(f"gateway-{name}", "services.gateway.server", {
            "TAGLLM_GATEWAY_PORT": str(port),
            "TAGLLM_GATEWAY_METRICS_PORT": str(metrics_port),
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


def _tag_all(cluster: Cluster, images: list[bytes], vocabulary: str, on_progress=None, parallel: int = 4):
    """Tags every image once, through the gateways in turn, `parallel` at a time; a failed call
    fails the run."""
    lock = threading.Lock()
    done = [0]
    names = sorted(cluster.gateways)

    def one(index: int) -> None:
        cluster.client(names[index % len(names)]).tag(images[index], vocabulary=vocabulary)
        with lock:
            done[0] += 1
            if on_progress is not None:
                on_progress(done[0])

    with futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, range(len(images))))


def _answered_once(before: dict[str, float], after: dict[str, float], count: int) -> bool:
    """Every one of `count` images answered OK exactly once, by the servers' own counts: no call
    failed, none was repeated."""
    delta = {key: after[key] - before[key] for key in after}
    return delta == {"Tag": count, "Tag OK": count, "Refine": count, "Refine OK": count}


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
    wait_until(lambda: all(cluster.model_servers_known(h) == 2 for h in cluster.refiners), 30,
               "every refiner finding both model servers")  # fmt: skip
    images = _images(24, 0)
    before = cluster.answered()
    _tag_all(cluster, images, "pets")
    assert _answered_once(before, cluster.answered(), 24)
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

    before = cluster.answered()  # the new refiner's counts start at 0
    _tag_all(cluster, _images(48, 100), "pets", change)
    assert changed.is_set()
    assert _answered_once(before, cluster.answered(), 48)  # every image once, none failed
    assert cluster.triton_metric("127.0.0.6", "nv_inference_request_success") > 0

    # The gateways reach the added refiner after their next lookup (every second here); a batched
    # model server may answer the 48 images before that, so tag on until it takes traffic.
    def added_refiner_answered() -> bool:
        if cluster.refiner_handled("127.0.0.7") > 0:
            return True
        _tag_all(cluster, _images(8, 200), "pets")
        return False

    wait_until(added_refiner_answered, 30, "the added refiner taking traffic")

    # Both gateways restart: the registered vocabulary is still known to each.
    for name in ("a", "b"):
        process, port = cluster.gateways[name]
        process.stop()
        cluster.start_gateway(name, port)
    listed = cluster.client("b").stub.ListVocabularies(tagging_pb2.ListVocabulariesRequest())
    assert "pets" in {v.name for v in listed.vocabularies}
    result = cluster.client("a").tag(png(), vocabulary="pets").result
    assert result.version.vocabulary == "pets"
    assert {label.name for label in result.labels} <= {"cat", "dog", "sofa"}


@pytest.fixture
def queued_cluster(qwen_dir, tmp_path):
    """Two model servers with short queues (two requests wait, more are refused), one refiner
    that leaves an image's model server as soon as it is busier than twice the other one, one
    gateway."""
    with DnsServer() as dns:
        cluster = Cluster(qwen_dir, tmp_path, dns, max_queue_size=2,
                          refiner_env={"TAGLLM_REFINER_TRITON_AFFINITY_SLACK": "0",
                                       "TAGLLM_REFINER_OVERLOAD_RETRY_SECONDS": "0.5",
                                       # No connection age here: it would cut (UNAVAILABLE, after
                                       # the drain) the calls that wait on the stalled server.
                                       "TAGLLM_REFINER_MAX_CONNECTION_AGE_SECONDS": "0"})  # fmt: skip
        dns.set(TRITON_NAME, cluster.triton_hosts[:2])
        dns.set(REFINER_NAME, cluster.refiner_hosts[:1])
        try:
            for host in cluster.triton_hosts[:2]:
                cluster.start_triton(host)
            cluster.start_refiner(cluster.refiner_hosts[0])
            cluster.start_gateway("a")
            yield cluster
        finally:
            cluster.stop()


def test_a_stalled_model_server_sheds_images_and_full_queues_refuse_at_once_losing_nothing(
    queued_cluster, tmp_path
):
    cluster = queued_cluster
    stalled, other = cluster.triton_hosts[:2]

    def computed(host: str) -> float:  # images whose prefix this server computed
        return cluster.triton_metric(host, "tagllm_prefix_cache_misses_total")

    # Each image's own model server, by affinity: the first run computes each image once.
    images = _images(16, 300)
    before = cluster.answered()
    _tag_all(cluster, images, "coco")
    assert _answered_once(before, cluster.answered(), 16)
    assert computed(stalled) >= 3 and computed(other) > 0  # two of the stalled server's may spill

    # The same images while one server is stalled (SIGSTOP: it accepts, answers nothing). Images
    # of the other server hit its cache; images of the stalled one, once a call or two waits on
    # it, are computed by the other server: spill-over, counted by that server.
    spilled_before = computed(other)
    group = cluster.tritons[stalled].process.pid
    os.killpg(group, signal.SIGSTOP)
    before = cluster.answered()
    try:
        with futures.ThreadPoolExecutor(1) as runner:
            # Two at a time: one call waits on the stalled server; the other slot's calls run one
            # by one, so at each choice the other server has none in flight and the stalled one
            # (one) is past the bound (twice none): every further image of the stalled server
            # spills over. With more slots the other server may be busy at that moment and the
            # stalled one takes every slot (seen once: one spill-over).
            run = runner.submit(_tag_all, cluster, images, "coco", None, 2)
            # Not the shared poll: on a timeout the stalled server must be resumed before anything
            # fails, or the run would wait out its calls' deadlines on it.
            deadline = time.monotonic() + 120
            while computed(other) - spilled_before < 2 and time.monotonic() < deadline and not run.done():
                time.sleep(0.1)
            spilled = computed(other) - spilled_before
            os.killpg(group, signal.SIGCONT)  # the calls that waited on it are answered now
            run.result(timeout=240)
    finally:
        os.killpg(group, signal.SIGCONT)
    assert spilled >= 2, "images of the stalled server went to the other one"
    assert _answered_once(before, cluster.answered(), 16)  # nothing lost, nothing repeated

    # A burst beyond every queue: refused at once with RESOURCE_EXHAUSTED and RetryInfo (not left
    # to wait out its deadline), the rest answered.
    burst = _images(24, 400)

    def one(image: bytes) -> tuple[str, float]:
        try:
            cluster.client("a").tag(image, vocabulary="coco", timeout=120)
            return "OK", 0.0
        except grpc.RpcError as exc:
            return exc.code().name, retry_delay(exc)

    with futures.ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(one, burst))
    codes = [code for code, _ in outcomes]
    assert set(codes) == {"OK", "RESOURCE_EXHAUSTED"}, outcomes
    assert all(delay == 0.5 for code, delay in outcomes if code == "RESOURCE_EXHAUSTED")

    # An annotate run with more images in flight than the queues take: what is refused is retried
    # as told, and every image ends with a result.
    refused_before = cluster.refiner_handled(cluster.refiner_hosts[0], "RESOURCE_EXHAUSTED")
    dataset = generate(tmp_path / "dataset", 24, seed=5, size=96)
    out = tmp_path / "run"
    run = run_cli("annotate", dataset, "--out", out, "--window", 24, "--retries", 40,
                  "--address", f"127.0.0.1:{cluster.gateways['a'][1]}", timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["image"] for r in records) == sorted({r["image"] for r in records})
    assert len(records) == 24
    assert (out / "failures.jsonl").read_text() == ""
    assert cluster.refiner_handled(cluster.refiner_hosts[0], "RESOURCE_EXHAUSTED") > refused_before
