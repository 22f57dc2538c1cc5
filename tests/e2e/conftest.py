import grpc
import pytest

from tagllm.stack.local import LocalStack, StackSettings
from tagllm.v1 import tagging_pb2_grpc
from tests.conftest import free_ports
from tests.e2e.hostile import keyed_gateway

MAX_IMAGE_BYTES = 2_000_000
MAX_IMAGE_PIXELS = 4_000_000


@pytest.fixture(scope="session")
def stack(qwen_dir, tmp_path_factory):
    settings = StackSettings(
        model_dir=qwen_dir,
        run_dir=tmp_path_factory.mktemp("stack"),
        **free_ports(),
        service_settings={
            "gateway": {"max_image_bytes": MAX_IMAGE_BYTES, "max_image_pixels": MAX_IMAGE_PIXELS}
        },
    )
    with LocalStack(settings) as running:
        yield running
    assert not any(p.running for p in running.processes.values())


@pytest.fixture(scope="session")
def gateway(stack):
    with grpc.insecure_channel(stack.settings.gateway_address) as channel:
        yield tagging_pb2_grpc.TaggingServiceStub(channel)


@pytest.fixture(scope="session")
def hostile_gateway(stack):
    """A gateway with keys, a small in-flight limit and a short stream idle time, before the
    session's refiner; in-process, on real gRPC. One for all the hostile-input modules."""
    with keyed_gateway(
        stack, max_image_bytes=MAX_IMAGE_BYTES, max_in_flight=4, stream_idle_seconds=2.0,
        quota_requests_per_second=200,
    ) as address:  # fmt: skip
        yield address


@pytest.fixture(scope="session")
def channel(hostile_gateway):
    with grpc.insecure_channel(hostile_gateway) as channel:
        yield channel


@pytest.fixture(scope="session")
def api(channel):
    return tagging_pb2_grpc.TaggingServiceStub(channel)
