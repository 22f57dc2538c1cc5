"""The checkpoint the local stack uses when none is configured.

The demo model ships with the package: a small Qwen2.5-VL trained from scratch on the synthetic
world (`tagllm model train-demo`), so the stack tags what is drawn in that world. It knows
nothing of photographs; a real checkpoint is one flag (`--model-dir`) or one variable
(`TAGLLM_MODEL_DIR`) away. Without the demo checkpoint (a package built without it), a tiny
random Qwen2.5-VL is built once and kept instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tagllm.mllm.tiny import DEFAULT_ARCH, build_tiny_model

MODEL_DIR_ENV = "TAGLLM_MODEL_DIR"
HOME_ENV = "TAGLLM_HOME"
DEMO_MODEL_DIR = Path(__file__).resolve().parents[1] / "demo_model" / "checkpoint"


def tagllm_home() -> Path:
    return Path(os.environ.get(HOME_ENV, Path.home() / ".cache" / "tagllm"))


def default_model_dir(arch: str = DEFAULT_ARCH) -> Path:
    """TAGLLM_MODEL_DIR if set, else the shipped demo model, else a tiny random checkpoint of
    `arch`, built once and kept."""
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured)
    if _has_demo_model():
        return DEMO_MODEL_DIR
    return tiny_model_dir(arch)


def _has_demo_model() -> bool:
    return (DEMO_MODEL_DIR / "config.json").exists()


def describe_default_model(arch: str = DEFAULT_ARCH) -> str:
    """What `default_model_dir` serves, in words (the help of the commands that use it)."""
    fallback = (
        "the demo model shipped with the package, a small Qwen2.5-VL trained on the synthetic world: "
        "it tags that world's classes and knows nothing of photographs"
        if _has_demo_model()
        else f"a tiny random {arch} checkpoint, built once under ${HOME_ENV}"
    )
    return f"${MODEL_DIR_ENV} if set, else {fallback}"


def tiny_model_dir(arch: str = DEFAULT_ARCH) -> Path:
    """A tiny random checkpoint of `arch`, built once under TAGLLM_HOME and kept."""
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
