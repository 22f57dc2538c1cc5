"""Builds and starts the images without a container engine: each Dockerfile's steps run in a
Debian bookworm root filesystem made by debootstrap, as root, through chroot.

No image registry can be reached from the machines this project is built on, so the base image
(python:3.11-slim-bookworm: Debian bookworm with Python 3.11) is stood in for by a debootstrap
of bookworm with Debian's own Python 3.11, `python` linked to it where the base image has it.
Every other step is the Dockerfile's own: its RUN commands run in the root filesystem of their
stage, COPY copies what the build context (or an earlier stage) holds, ENV, WORKDIR, USER and the
entry point are honoured when the result is started. Then each image is started as its
Kubernetes pod starts it, and checked the way its probes check it.

    sudo .venv/bin/python scripts/verify_images.py [--work /var/tmp/tagllm-images]

What differs from a real build is said at the end of its report: the Python build (Debian's, not
python.org's), and the index torch comes from for the CPU build (a local copy of the wheel).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tagllm.stack.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "deploy" / "docker"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# For the build steps only: pip trusts the system's bundle (above) instead of its own.
BUILD_ENV = {"PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}
BASE_PACKAGES = ",".join(
    ["python3.11", "python3.11-venv", "python3-distutils", "python3-pip-whl", "python3-setuptools-whl",
     "libpython3.11", "ca-certificates"]
)  # fmt: skip


@dataclasses.dataclass
class Stage:
    name: str
    root: Path
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    workdir: str = "/"
    user: str = "0"
    entrypoint: list[str] = dataclasses.field(default_factory=list)
    cmd: list[str] = dataclasses.field(default_factory=list)


def log(message: str) -> None:
    print(f"[verify-images] {message}", flush=True)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined, steps = "", []
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not joined:
            continue
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        joined += line
        if joined.strip():
            keyword, _, rest = joined.strip().partition(" ")
            steps.append((keyword.upper(), rest.strip()))
        joined = ""
    return steps


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), ""), text)


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses (deb822 .sources or a sources.list line), for
    debootstrap: the same mirror, and no host name written here."""
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            suites = fields.get("Suites", "").split()
            if "bookworm" in suites and fields.get("URIs"):
                return fields["URIs"].split()[0]
    listing = sources / "sources.list"
    for line in listing.read_text().splitlines() if listing.exists() else []:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
            return parts[1]
    raise SystemExit("no Debian bookworm mirror in /etc/apt: pass --mirror URL")


def base_rootfs(work: Path, mirror: str) -> Path:
    base = work / "base"
    if (base / "usr" / "bin" / "python3.11").exists():
        return base
    log(f"debootstrap bookworm into {base}")
    command = ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(base)]
    subprocess.run([*command, mirror], check=True)
    return base


def prepare_root(base: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    # The base image's `python` (it lives in /usr/local/bin there).
    for name in ("python", "python3"):
        link = root / "usr" / "local" / "bin" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to("/usr/bin/python3.11")
    shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # This machine reaches the package indexes through a proxy that its own CA bundle trusts.
    shutil.copy2(HOST_CA_BUNDLE, root / "etc" / "ssl" / "certs" / "ca-certificates.crt")


class Mounts:
    """/proc, /dev and /dev/shm of the host inside a stage's root, while commands run there."""

    def __init__(self, root: Path, extra: dict[str, Path]) -> None:
        self.points = [(root / "proc", ["-t", "proc", "proc"]), (root / "dev", ["--rbind", "/dev"])]
        for target, source in extra.items():
            self.points.append((root / target.lstrip("/"), ["--bind", str(source)]))
        self.mounted: list[Path] = []

    def __enter__(self) -> Mounts:
        for target, args in self.points:
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", *args, str(target)], check=True)
            self.mounted.append(target)
        return self

    def __exit__(self, *exc) -> None:
        for target in reversed(self.mounted):
            subprocess.run(["umount", "-R", "-l", str(target)], check=False)


def chroot_argv(stage: Stage, argv: list[str], user: str | None = None) -> list[str]:
    user = user if user is not None else stage.user
    spec = user if ":" in user else f"{user}:{user}"
    return ["chroot", f"--userspec={spec}", str(stage.root), "/usr/bin/env", "-i",
            *(f"{k}={v}" for k, v in stage.env.items()), "sh", "-c",
            f"cd {shlex.quote(stage.workdir)} && exec " + " ".join(map(shlex.quote, argv))]  # fmt: skip


def build(
    dockerfile: Path, work: Path, build_args: dict[str, str], mounts: dict[str, Path], mirror: str
) -> Stage:
    """Runs the Dockerfile's steps (the base root from Debian `mirror`); the last stage, ready to start."""
    base = base_rootfs(work, mirror)
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, rest in instructions(dockerfile):
        values = {**args, **(stage.env if stage else {})}
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = build_args.get(name, default)
        elif keyword == "FROM":
            parts = substitute(rest, args).split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"stage{len(stages)}"
            root = work / dockerfile.stem / name
            log(f"{dockerfile.name}: stage {name} ({parts[0]} stood in for by bookworm, Python 3.11)")
            prepare_root(base, root)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root"}
            stage = stages[name] = Stage(name, root, env=env)
        elif stage is None:
            raise SystemExit(f"{dockerfile}: {keyword} before FROM")
        elif keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                stage.env[key] = substitute(value, values)
        elif keyword == "WORKDIR":
            stage.workdir = substitute(rest, values)
            (stage.root / stage.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "RUN":
            command = substitute(rest, values)
            log(f"{stage.name}: RUN {command[:150]}")
            env_stage = dataclasses.replace(stage, env={**stage.env, **args, **BUILD_ENV})
            with Mounts(stage.root, mounts):
                subprocess.run(chroot_argv(env_stage, ["sh", "-c", command], user="0"), check=True)
        elif keyword == "COPY":
            parts = shlex.split(rest)
            source_root = ROOT
            if parts[0].startswith("--from="):
                source_root = stages[parts.pop(0).split("=", 1)[1]].root
            *sources, target = parts
            destination = stage.root / target.lstrip("/")
            for source in sources:
                origin = source_root / source.lstrip("/")
                into = destination / origin.name if target.endswith("/") else destination
                into.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    shutil.copytree(origin, into, symlinks=True, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
                else:
                    shutil.copy2(origin, into)
        elif keyword in ("ENTRYPOINT", "CMD"):
            setattr(stage, keyword.lower(), json.loads(rest))
        elif keyword != "EXPOSE":
            raise SystemExit(f"{dockerfile}: {keyword} is not handled here")
    assert stage is not None
    return stage


def wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not listening yet
            pass
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {what}")


def run_in(stage: Stage, argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen:
    started = dataclasses.replace(stage, env={**stage.env, **env})
    return subprocess.Popen(chroot_argv(started, argv), stdout=log_file.open("w"), stderr=subprocess.STDOUT)


def health_status(address: str, what: str) -> str:
    """The gRPC health status the service at `address` answers (waiting for it to listen). The
    metrics service has no dependency: SERVING; the others answer NOT_SERVING until what they
    call is up, which is what their readiness probes see."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answers: list[int] = []

        def answered() -> bool:
            answers.append(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
            return True

        wait(answered, 60, what)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answers[-1])


def check_services(stage: Stage, work: Path) -> list[str]:
    results = []

    def succeeds(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(chroot_argv(stage, argv), capture_output=True, text=True)

    absent = succeeds(["python", "-c", "import torch"]).returncode != 0
    assert absent, "torch is installed in the services image"
    results.append("services: torch, transformers and Triton are absent")
    usage = succeeds(["tagllm", "annotate", "--help"])
    assert usage.returncode == 0 and "usage: tagllm annotate" in usage.stdout, usage.stderr[-2000:]
    results.append("services: `tagllm annotate --help` runs (the annotate job's command)")
    with Mounts(stage.root, {}):
        for module, prefix in (("services.metrics.server", "METRICS"), ("services.refiner.server", "REFINER"),
                               ("services.gateway.server", "GATEWAY")):  # fmt: skip
            port = free_port()
            env = {f"TAGLLM_{prefix}_PORT": str(port), f"TAGLLM_{prefix}_HOST": "127.0.0.1"}
            if prefix == "GATEWAY":
                env.update(TAGLLM_GATEWAY_REQUIRE_API_KEYS="true", TAGLLM_GATEWAY_API_KEYS="k")
            process = run_in(stage, ["python", "-m", module], env, work / f"{module}.log")
            try:
                status = health_status(f"127.0.0.1:{port}", module)
                results.append(f"services: `python -m {module}` as user 65532 answers gRPC health ({status})")
            finally:
                process.terminate()
                process.wait(30)
    return results


def check_model_server(stage: Stage, work: Path) -> list[str]:
    ports = {name: free_port() for name in ("http", "grpc", "metrics")}
    argv = [*stage.entrypoint, "--host=127.0.0.1", "--run-dir=/tmp/tagllm-model-server", "--threads=2",
            *(f"--{name}-port={port}" for name, port in ports.items())]  # fmt: skip
    with Mounts(stage.root, {}):
        process = run_in(stage, argv, {}, work / "model-server.log")
        try:
            url = f"http://127.0.0.1:{ports['http']}/v2/models/mllm/ready"
            wait(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 600, "the model to be ready")
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5).read()
            assert b"nv_inference_pending_request_count" in metrics
        finally:
            process.terminate()
            process.wait(60)
    return [
        "model-server: `tagllm model serve` as user 65532 starts Triton; model mllm (the demo checkpoint, "
        "warmed up) becomes ready, as the readiness probe asks; /metrics exports the autoscaler's metric"
    ]


def local_torch_index(work: Path) -> tuple[str, dict[str, Path]]:
    """A one-package index of the CPU torch wheel on this machine, standing in for PyTorch's."""
    wheels = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))
    if not wheels:
        raise SystemExit("no CPU torch 2.13.0 wheel in /opt/wheels")
    index = work / "torch-index" / "cpu" / "torch"  # TORCH_INDEX/TORCH_BUILD, as PyTorch's
    index.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheels[0], index / wheels[0].name)
    (index / "index.html").write_text(f'<a href="{wheels[0].name}">{wheels[0].name}</a>\n')
    return "file:///opt/torch-index", {"/opt/torch-index": work / "torch-index"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/var/tmp/tagllm-images", help="root filesystems go here")
    parser.add_argument("--image", choices=["services", "model-server", "all"], default="all")
    parser.add_argument("--mirror", help="Debian mirror for debootstrap (default: the one apt uses here)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: debootstrap, chroot and mount need it")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    mirror = args.mirror or debian_mirror()
    report = []
    started = time.monotonic()
    if args.image in ("services", "all"):
        stage = build(DOCKER / "services.Dockerfile", work, {}, {}, mirror)
        report += check_services(stage, work)
    if args.image in ("model-server", "all"):
        index, mounts = local_torch_index(work)
        build_args = {"TORCH_BUILD": "cpu", "TORCH_INDEX": index}
        stage = build(DOCKER / "model-server.Dockerfile", work, build_args, mounts, mirror)
        report += check_model_server(stage, work)
    report.append(
        "differences from a real build: Debian's Python 3.11 stands in for python.org's in the base "
        "image; the CPU torch wheel comes from a local index instead of PyTorch's; the "
        "build steps trust this machine's CA bundle (its proxy to the package indexes)"
    )
    print("\n".join(f"- {line}" for line in report))
    log(f"all steps passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
