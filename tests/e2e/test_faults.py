"""Fault runs: a process of `tagllm up` killed while `annotate` runs. The stack heals itself
(no manual restart) and the run ends with every image answered exactly once, none failed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tagllm.datasets.synthetic import generate
from tests.e2e.processes import pid_with_arg, pid_with_env, read_until, start_up

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
IMAGES = 24


@pytest.fixture(scope="module")
def up(qwen_dir, tmp_path_factory):
    process, ports = start_up(qwen_dir, tmp_path_factory.mktemp("faults") / "run")
    output: list[str] = []
    try:
        assert read_until(process, output, lambda line: "all services healthy" in line, 180), "".join(output)
        yield process, ports, output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("fault-images"), IMAGES, seed=5, size=96)


def _victim_pid(victim: str, ports: dict[str, int]) -> int:
    if victim == "triton":
        return pid_with_arg(f"--grpc-port={ports['triton_grpc_port']}")
    return pid_with_env(f"TAGLLM_{victim.upper()}_PORT={ports[f'{victim}_port']}")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("victim", ["triton", "refiner", "metrics"])
def test_a_killed_process_during_annotate_loses_and_repeats_no_image(up, dataset, victim, tmp_path):
    process, ports, output = up
    out = tmp_path / "run"
    annotate = subprocess.Popen(
        [sys.executable, "-m", "tagllm.cli.main", "annotate", str(dataset), "--out", str(out),
         "--strategy", "binary", "--window", "2", "--retries", "10",
         "--address", f"127.0.0.1:{ports['gateway_port']}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_lines(out / "results.jsonl")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(_victim_pid(victim, ports), signal.SIGKILL)
    at_kill = len(_lines(out / "results.jsonl"))
    assert 3 <= at_kill < IMAGES, "the fault must hit the run half way"
    assert read_until(process, output, lambda line: f"{victim} restarted" in line, 60), "".join(output[-20:])
    _, errors = annotate.communicate(timeout=400)
    assert annotate.returncode == 0, errors[-2000:]

    images = [json.loads(line)["image"] for line in _lines(out / "results.jsonl")]
    assert len(images) == len(set(images)) == IMAGES, f"{len(images)} results, {at_kill} at the kill"
    assert _lines(out / "failures.jsonl") == []
    assert process.poll() is None  # the stack is still up, healed
