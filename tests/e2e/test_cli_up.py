"""`tagllm up` as a user runs it: a process that starts everything, then stops everything on SIGTERM."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import free_ports
from tests.e2e.processes import pid_with_env, port_open, read_until

pytestmark = pytest.mark.e2e


def test_up_tag_and_stop_leaves_nothing_behind(qwen_dir, tmp_path):
    ports = free_ports()
    ports.pop("prometheus_port")
    run_dir = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "tagllm.cli.main",
        "up",
        "--model-dir",
        str(qwen_dir),
        "--run-dir",
        str(run_dir),
    ]
    for field, port in ports.items():
        argv += ["--" + field.replace("_", "-"), str(port)]
    up = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            ready, _, _ = select.select([up.stdout], [], [], 1.0)
            if ready:
                line = up.stdout.readline()
                output.append(line)
                if "all services healthy" in line or not line:
                    break
        assert any("all services healthy" in line for line in output), "".join(output)

        image = tmp_path / "red.png"
        from tests.conftest import png

        image.write_bytes(png())
        tagged = subprocess.run(
            [sys.executable, "-m", "tagllm.cli.main", "tag", str(image), "--json",
             "--address", f"127.0.0.1:{ports['gateway_port']}", "--strategy", "multi_option"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert tagged.returncode == 0, tagged.stderr
        result = json.loads(tagged.stdout)
        assert result["usage"]["calls"] == 1 and result["version"]["strategy"] == "multi_option"
        for name in ("triton.log", "metrics.log", "refiner.log", "gateway.log"):
            assert (run_dir / "logs" / name).stat().st_size > 0
        gateway_log = (run_dir / "logs" / "gateway.log").read_text().splitlines()
        rpc_lines = [json.loads(line) for line in gateway_log if line.startswith("{") and '"rpc"' in line]
        assert any(line.get("request_id") for line in rpc_lines)

        # The stack heals itself: a killed metrics service is started again, and serves.
        metrics_pid = pid_with_env(f"TAGLLM_METRICS_PORT={ports['metrics_port']}")
        os.kill(metrics_pid, signal.SIGKILL)
        assert read_until(up, output, lambda line: "metrics restarted" in line, 60), "".join(output)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not port_open(ports["metrics_port"]):
            time.sleep(0.5)
        assert (
            port_open(ports["metrics_port"])
            and pid_with_env(f"TAGLLM_METRICS_PORT={ports['metrics_port']}") != metrics_pid
        )
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert up.returncode == 0
    for port in ports.values():
        assert not port_open(port), f"port {port} still open after stop"
    leftovers = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
    assert not [pid for pid in leftovers if int(pid) != os.getpid()]
