"""Launching the `tritonserver` binary bundled in the nvidia-pytriton wheel, CPU only.

Pitfalls handled here: the python backend stub must sit next to
`libtriton_python.so` in a backend directory of our own; the stub links libpython3.11, so
LD_LIBRARY_PATH starts with the running interpreter's LIBDIR, then the wheel's bundled libs;
the model's imports resolve through PYTHONPATH (site-packages and this source tree).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import site
import sys
import sysconfig
import urllib.request
from importlib import util as import_util
from pathlib import Path

from tagllm import ports
from tagllm.extras import ExtraMissing
from tagllm.mllm.tensors import MODEL_NAME, with_queue_bound
from tagllm.resources import MODEL_REPOSITORY, PACKAGE_ROOT, resource
from tagllm.stack.processes import ManagedProcess


@dataclasses.dataclass(frozen=True)
class TritonSettings:
    model_dir: Path
    host: str = "127.0.0.1"
    http_port: int = ports.TRITON_HTTP
    grpc_port: int = ports.TRITON_GRPC
    metrics_port: int = ports.TRITON_METRICS
    device: str = "cpu"
    dtype: str = "float32"
    shared_prefix: bool = True
    # Compute threads of each model instance (0: torch's default, one per core; with several
    # instances, the cores shared out among them). Set through the server's environment too: in
    # the python backend, torch.set_num_threads at load time was measured not to hold (with 1
    # set, two threads of the model's process stayed busy).
    threads: int = 0
    # Copies of the model Triton runs side by side, each in a process of its own, each taking the
    # next batch when it is free. On a CPU, two single-threaded instances serve concurrent clients
    # faster than one whose threads split each small matrix product (BENCHMARKS.md); each holds
    # its own weights and its own image-prefix cache.
    instances: int = 1
    prefix_cache_bytes: int = 256 * 1024 * 1024
    backend: str = "transformers"
    # Requests Triton's dynamic batcher hands the model at once (their work runs together);
    # 1: every request alone, as before batching.
    max_batch_size: int = 8
    # Seconds Triton lets in-flight requests finish after SIGTERM.
    exit_timeout: int = 10
    # Requests that may wait in the model's queue; more are refused at once (0: no bound).
    max_queue_size: int = 64
    # Mutual TLS on the gRPC port: (certificate, key, CA that signs its callers). Triton's HTTP
    # port has no TLS, so it is turned off then; its metrics port stays plaintext (read-only).
    tls: tuple[Path, Path, Path] | None = None
    # Client identity (certificate, key) for the stack's own readiness probe under TLS.
    probe_identity: tuple[Path, Path] | None = None


def instance_threads(settings: TritonSettings) -> int:
    """Compute threads of each instance (0: torch's default): the cores this process may run on
    (its affinity: a container's cpuset) shared out among the instances."""
    if settings.instances < 1:
        raise ValueError(f"instances must be at least 1, got {settings.instances}")
    if settings.threads or settings.instances == 1:
        return settings.threads
    return max(1, len(os.sched_getaffinity(0)) // settings.instances)


def pytriton_root() -> Path:
    spec = import_util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise ExtraMissing(
            "the model server needs nvidia-pytriton (the tritonserver binary): pip install 'tagllm[server]'"
        )
    return Path(spec.origin).parent


def prepare_model_repository(settings: TritonSettings, run_dir: Path) -> Path:
    """Copy the model repository into `run_dir`, with the parameters of `settings` filled in."""
    repository = run_dir / "model_repository"
    if repository.exists():
        shutil.rmtree(repository)
    shutil.copytree(resource(MODEL_REPOSITORY), repository, ignore=shutil.ignore_patterns("__pycache__"))
    config_path = repository / MODEL_NAME / "config.pbtxt"
    config = config_path.read_text()
    values = {
        "model_dir": str(Path(settings.model_dir).resolve()),
        "device": settings.device,
        "dtype": settings.dtype,
        "shared_prefix": "true" if settings.shared_prefix else "false",
        "threads": str(instance_threads(settings)),
        "prefix_cache_bytes": str(settings.prefix_cache_bytes),
        "backend": settings.backend,
    }
    for key, value in values.items():
        pattern = rf'(key: "{key}", value: {{ string_value: )"[^"]*"'
        replacement = value.replace("\\", "\\\\")
        config, count = re.subn(pattern, rf'\1"{replacement}"', config)
        if count != 1:
            raise RuntimeError(f"config.pbtxt has no parameter {key!r}")
    if settings.max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {settings.max_batch_size}")
    for pattern in (r"^(max_batch_size: )\d+", r"^(  preferred_batch_size: \[ )\d+"):
        config, count = re.subn(pattern, rf"\g<1>{settings.max_batch_size}", config, flags=re.M)
        if count != 1:
            raise RuntimeError(f"config.pbtxt has no line matching {pattern!r}")
    # The count of the one instance_group, however its fields are ordered or laid out.
    config, count = re.subn(
        r"^(instance_group\s*\[\s*\{[^}]*?\bcount:\s*)\d+",
        rf"\g<1>{settings.instances}",
        config,
        flags=re.M,
    )
    if count != 1:
        raise RuntimeError("config.pbtxt has no instance_group with a count")
    config_path.write_text(with_queue_bound(config, settings.max_queue_size))
    return repository


def prepare_backends(run_dir: Path) -> Path:
    root = pytriton_root() / "tritonserver"
    backends = run_dir / "backends"
    python_backend = backends / "python"
    python_backend.mkdir(parents=True, exist_ok=True)
    for item in (root / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, python_backend / item.name)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise RuntimeError(f"nvidia-pytriton ships no python backend stub for Python {version}")
    shutil.copy2(stub, python_backend / "triton_python_backend_stub")
    return backends


def triton_environment(threads: int = 0) -> dict[str, str]:
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    libs = [sysconfig.get_config_var("LIBDIR"), str(pytriton_root().parent / "nvidia_pytriton.libs")]
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(libs)
    # Without this environment's bin first on PATH the stub does not see PYTHONPATH's packages
    # (measured: `No module named 'torch'` when the venv is not activated).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    paths = [str(PACKAGE_ROOT), *site.getsitepackages()]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = ":".join(paths)
    return env


def triton_argv(settings: TritonSettings, run_dir: Path) -> list[str]:
    """The tritonserver command line of `settings`, its model repository and python backend
    written to `run_dir`: the local stack's and the model-server image's (`tagllm model serve`)."""
    repository = prepare_model_repository(settings, run_dir)
    backends = prepare_backends(run_dir)
    binary = pytriton_root() / "tritonserver" / "bin" / "tritonserver"
    argv = [
        str(binary),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        f"--grpc-address={settings.host}",
        f"--grpc-port={settings.grpc_port}",
        "--allow-metrics=true",
        f"--metrics-address={settings.host}",
        f"--metrics-port={settings.metrics_port}",
        "--log-verbose=0",
        f"--exit-timeout-secs={settings.exit_timeout}",
        # Shared-memory regions named after this server's port, so that those a killed server
        # leaves behind can be found and removed before the next one starts.
        f"--backend-config=python,shm-region-prefix-name={shm_prefix(settings)}",
    ]
    if settings.tls is None:
        argv += [f"--http-address={settings.host}", f"--http-port={settings.http_port}"]
    else:
        cert, key, ca = settings.tls
        argv += [
            "--allow-http=false",
            "--grpc-use-ssl-mutual=true",
            f"--grpc-server-cert={cert}",
            f"--grpc-server-key={key}",
            f"--grpc-root-cert={ca}",
        ]
    return argv


def triton_process(settings: TritonSettings, run_dir: Path) -> ManagedProcess:
    return ManagedProcess(
        "triton",
        triton_argv(settings, run_dir),
        run_dir / "logs" / "triton.log",
        env=triton_environment(instance_threads(settings)),
        cleanup=lambda: remove_shm_regions(shm_prefix(settings)),
    )


def exec_triton(settings: TritonSettings, run_dir: Path) -> None:
    """Replaces this process with tritonserver (a container's main process: signals reach Triton,
    which drains for `exit_timeout` seconds on SIGTERM)."""
    remove_shm_regions(shm_prefix(settings))
    argv = triton_argv(settings, run_dir)
    os.execve(argv[0], argv, triton_environment(instance_threads(settings)))


def shm_prefix(settings: TritonSettings) -> str:
    """Unique per listening address: servers on one port of different addresses coexist."""
    host = "".join(c if c.isalnum() else "_" for c in settings.host)
    return f"tagllm_triton_{host}_{settings.grpc_port}_"


def remove_shm_regions(prefix: str, shm: Path = Path("/dev/shm")) -> list[str]:
    """Removes the python backend's shared-memory regions named with `prefix` (a server that was
    killed cannot remove its own); returns their names."""
    removed = []
    for region in shm.glob(f"{prefix}*") if shm.is_dir() else ():
        try:
            region.unlink()
            removed.append(region.name)
        except OSError:
            pass
    return removed


def model_ready(settings: TritonSettings) -> bool:
    if settings.tls is not None:  # no HTTP port then: ask over gRPC, as a client with a certificate
        from tagllm.client import channel_credentials
        from tagllm.mllm.triton_client import TritonMLLM

        cert, key = settings.probe_identity or ("", "")
        credentials = channel_credentials(str(settings.tls[2]), str(cert), str(key))
        client = TritonMLLM(f"{settings.host}:{settings.grpc_port}", credentials=credentials)
        try:
            return client.ready()
        finally:
            client.close()
    url = f"http://{settings.host}:{settings.http_port}/v2/models/{MODEL_NAME}/ready"
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200
