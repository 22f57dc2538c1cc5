"""Finding and watching the processes of a stack that `tagllm up` started."""

import os
import select
import socket
import time


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_with_env(entry: str) -> int:
    """The process whose environment holds `entry` (this stack's, not another test's)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if entry.encode() in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process with {entry}")


def read_until(process, output: list[str], found, timeout: float) -> bool:
    """Reads the process's output lines into `output` until `found(line)` or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            output.append(line)
            if found(line):
                return True
    return False


def pid_with_arg(argument: str) -> int:
    """The process whose command line holds `argument` (Triton's own port, say)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if argument.encode() in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0"):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process with {argument}")
