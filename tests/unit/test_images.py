"""The images' recipes agree with the package: pinned lists that satisfy pyproject.toml, the
same torch, nothing copied that .dockerignore leaves out. (scripts/verify_images.py builds and
starts them; it needs root and a network, so it is run by hand, not in CI.)"""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(extra: str | None) -> list[Requirement]:
    """The direct requirements of the base install plus `extra` (and the extras it names)."""
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    pending = [extra] if extra else []
    while pending:
        for text in PROJECT["optional-dependencies"][pending.pop()]:
            requirement = Requirement(text)
            if requirement.name == "tagllm":
                pending += sorted(requirement.extras)
            else:
                found.append(requirement)
    return found


def pins(lock: str) -> dict[str, str]:
    lines = (DOCKER / lock).read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pairs}


@pytest.mark.parametrize(
    "lock, extra", [("requirements-services.txt", None), ("requirements-model-server.txt", "server")]
)
def test_each_pinned_list_satisfies_pyproject(lock, extra):
    pinned = pins(lock)
    for requirement in requirements(extra):
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{lock} lacks {requirement.name}: run scripts/lock_images.py"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (lock, str(requirement))


def test_the_services_image_has_no_model_code():
    assert not {"torch", "transformers", "tokenizers", "nvidia-pytriton"} & set(
        pins("requirements-services.txt")
    )


def test_the_model_server_installs_the_packages_torch():
    (torch,) = [r for r in requirements("server") if r.name == "torch"]
    dockerfile = (DOCKER / "model-server.Dockerfile").read_text()
    assert f'"torch{torch.specifier}"' in dockerfile


def test_the_images_copy_only_what_the_build_context_holds():
    kept = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for dockerfile in DOCKER.glob("*.Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY") and "--from=" not in line:
                for source in line.split()[1:-1]:
                    assert any(source == k or source.startswith(k + "/") for k in kept), (
                        dockerfile.name,
                        source,
                    )
        assert "USER 65532" in dockerfile.read_text()
