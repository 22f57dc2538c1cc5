"""What the tests share: images, the tiny models, the bounded poll, scraped metrics, health
probes, tag requests, the CLI as a subprocess and a gateway in-process."""

import contextlib
import io
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from services.common.logs import configure_logging
from tagllm.client import strategy_options
from tagllm.mllm.tiny import build_tiny_model
from tagllm.stack.ports import free_port, free_ports  # noqa: F401 - shared by the tests
from tagllm.v1 import common_pb2, tagging_pb2

T = TypeVar("T")
SERVING = health_pb2.HealthCheckResponse.SERVING
TAGGING_SERVICE = "tagllm.v1.TaggingService"


def pytest_configure(config):
    # Servers that tests run in-process log through `logging`: pytest captures it per test and
    # shows it with a failure. Printed, a server thread's line could land between pytest's dots.
    configure_logging("console", through_logging=True)


def png(width: int = 96, height: int = 64, color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {arch: build_tiny_model(arch, root / arch) for arch in ("qwen2_5_vl", "llava")}


@pytest.fixture(scope="session")
def qwen_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["qwen2_5_vl"]


def scraped_total(url: str, name: str, labels: str = "") -> float:
    """The sum of the samples of `name` (those whose labels contain `labels`) on a /metrics page;
    fails when there is none."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if (line.startswith(name + " ") or line.startswith(name + "{")) and labels in line.rsplit(" ", 1)[0]
    ]
    assert samples, f"{name}{{{labels}}} not exported at {url}"
    return sum(samples)


def wait_until(condition: Callable[[], T], timeout: float = 30.0, what: str = "the condition",
               interval: float = 0.1) -> T:  # fmt: skip
    """Polls `condition` until it returns something true and returns that; fails naming `what`
    after `timeout` seconds. The one way tests wait for asynchronous state (a scrape, a rule
    evaluation, a DNS refresh, a count that trails the response it counts)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


def health_status(address: str, service: str = "", credentials: grpc.ChannelCredentials | None = None) -> int:
    """The gRPC health status `address` reports for `service` ("" is the server as a whole)."""
    channel = (
        grpc.insecure_channel(address) if credentials is None else grpc.secure_channel(address, credentials)
    )
    with channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


def serving(address: str, service: str = TAGGING_SERVICE) -> bool:
    """Whether `address` says SERVING for `service`; a server not answering yet is not serving."""
    try:
        return health_status(address, service) == SERVING
    except grpc.RpcError:
        return False


def tag_request(
    content: bytes | None = None,
    strategy: str = "multi_option",
    vocabulary: str = "coco",
    image_id: str = "",
    reference: Sequence[str] | None = None,
    options: common_pb2.StrategyOptions | None = None,
    **option_fields,
) -> tagging_pb2.TagRequest:
    """A public Tag request: `png()` unless `content` is given, one model call (multi_option)
    unless another strategy or `options` (as they are, valid or not) are given."""
    request = tagging_pb2.TagRequest(
        image=tagging_pb2.Image(content=png() if content is None else content, id=image_id),
        vocabulary=vocabulary,
        options=options if options is not None else strategy_options(strategy, **option_fields),
    )
    if reference is not None:
        request.reference.CopyFrom(common_pb2.ReferenceLabels(labels=reference))
    return request


def run_cli(*args, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`tagllm ARGS` as a user runs it, in a process of its own; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "tagllm.cli.main", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


@contextlib.contextmanager
def in_process_gateway(refiner_address: str, wait_serving: bool = True, **settings) -> Iterator[str]:
    """A gateway in this process, on real gRPC over loopback, before `refiner_address`, with
    `settings` (GatewaySettings fields) beside the defaults; its address. Unless told not to,
    fails when it never says SERVING (it does once it reaches its refiner)."""
    from services.gateway.server import GatewaySettings, build_server
    from tagllm.settings import load_settings

    server = build_server(
        load_settings(GatewaySettings, "X_", port=free_port(), refiner_address=refiner_address, **settings)
    )
    server.start()
    address = f"127.0.0.1:{server.port}"
    try:
        if wait_serving:
            wait_until(lambda: serving(address), 30, f"the gateway on {address} saying SERVING", 0.2)
        yield address
    finally:
        server.stop()
