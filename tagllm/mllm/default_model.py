"""The checkpoint the local stack uses when none is configured: a tiny random Qwen2.5-VL."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tagllm.mllm.tiny import DEFAULT_ARCH, build_tiny_model

MODEL_DIR_ENV = "TAGLLM_MODEL_DIR"


def tagllm_home() -> Path:
    return Path(os.environ.get("TAGLLM_HOME", Path.home() / ".cache" / "tagllm"))


def default_model_dir(arch: str = DEFAULT_ARCH) -> Path:
    """TAGLLM_MODEL_DIR if set, else a tiny checkpoint of `arch`, built once and kept."""
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured)
    target = tagllm_home() / "models" / f"tiny-{arch}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tiny-{arch}-", dir=target.parent))
    try:
        build_tiny_model(arch, staging)
        try:
            staging.rename(target)  # atomic: a concurrent builder either wins or finds it done
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
