"""Files the local stack reads at run time that are not Python modules.

The Triton model repository ships with the `services` package; the Prometheus rules and the
Grafana dashboards live in `deploy/`, which only a source checkout has. They are found beside
the package (a checkout, or an installed wheel for the model repository), or under the folder
that `TAGLLM_RESOURCES_DIR` names; a missing one is an error that says so.
"""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES_ENV = "TAGLLM_RESOURCES_DIR"
# The folder holding the `tagllm` and `services` packages: what child processes put on PYTHONPATH.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = "services/triton/model_repository"
PROMETHEUS_RULES = "deploy/prometheus/rules"
GRAFANA_DASHBOARDS = "deploy/grafana/dashboards"


class ResourceMissing(FileNotFoundError):
    """A file the command needs is not where the package or the setting says."""


def resources_root() -> Path:
    configured = os.environ.get(RESOURCES_ENV)
    return Path(configured) if configured else PACKAGE_ROOT


def resource(relative: str) -> Path:
    """The folder or file `relative` (to the repository root), or ResourceMissing."""
    root = resources_root()
    path = root / relative
    if not path.exists():
        raise ResourceMissing(
            f"{relative} is not under {root}; point {RESOURCES_ENV} at a checkout of the TagLLM "
            "repository (it ships the model repository and deploy/)"
        )
    return path
