"""Finding and watching the processes of a stack that `tagllm up` started."""

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_ports


def start_up(model_dir: Path, run_dir: Path) -> tuple[subprocess.Popen, dict[str, int]]:
    """`tagllm up` on free ports (no Prometheus), its stdout and stderr (the supervisor's
    lines) in one text pipe; and the ports it was given."""
    ports = free_ports()
    ports.pop("prometheus_port")
    argv = [
        sys.executable,
        "-m",
        "tagllm.cli.main",
        "up",
        "--model-dir",
        str(model_dir),
        "--run-dir",
        str(run_dir),
    ]
    for field, port in ports.items():
        argv += ["--" + field.replace("_", "-"), str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, ports


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_whose(proc_file: str, entry: str) -> int:
    """The process whose /proc/PID/`proc_file` (NUL-separated) holds `entry`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if entry.encode() in open(f"/proc/{pid}/{proc_file}", "rb").read().split(b"\0"):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process with {entry}")


def pid_with_env(entry: str) -> int:
    """The process whose environment holds `entry` (this stack's, not another test's)."""
    return _pid_whose("environ", entry)


def pid_with_arg(argument: str) -> int:
    """The process whose command line holds `argument` (Triton's own port, say)."""
    return _pid_whose("cmdline", argument)


def read_until(process, output: list[str], found, timeout: float) -> bool:
    """Reads the process's output lines into `output` until `found(line)`, the end of its
    output, or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if not line:  # the process has gone
                return False
            output.append(line)
            if found(line):
                return True
    return False
