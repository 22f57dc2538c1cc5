"""`tagllm up` as a user runs it: a process that starts everything, then stops everything on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.processes import pid_with_env, port_open, read_until, start_up

pytestmark = pytest.mark.e2e


def test_up_tag_and_stop_leaves_nothing_behind(qwen_dir, tmp_path):
    run_dir = tmp_path / "run"
    up, ports = start_up(qwen_dir, run_dir)
    output: list[str] = []
    try:
        read_until(up, output, lambda line: "all services healthy" in line, 180)
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
        assert result["usage"]["mllm_calls"] == 1 and result["version"]["strategy"] == "STRATEGY_MULTI_OPTION"
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
