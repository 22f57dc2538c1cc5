import io
import socket
from pathlib import Path

import pytest
from PIL import Image

from tagllm.mllm.tiny import build_tiny_model


def png(width: int = 96, height: int = 64, color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {arch: build_tiny_model(arch, root / arch) for arch in ("qwen2_5_vl", "llava")}


@pytest.fixture(scope="session")
def qwen_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["qwen2_5_vl"]


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


def free_ports() -> dict[str, int]:
    """A free port for every port setting of the local stack."""
    return {field: free_port() for field in PORT_FIELDS}
