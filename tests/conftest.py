import io
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from services.common.logs import configure_logging
from tagllm.mllm.tiny import build_tiny_model
from tagllm.stack.ports import free_port, free_ports  # noqa: F401 - shared by the tests


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
