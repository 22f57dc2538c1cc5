"""Where the CPU goes while the local stack tags images: CPU milliseconds per image of each
process (the model's processes, Triton itself, refiner, gateway, metrics service, this client)
at each level of concurrency, for one serving layout.

    .venv/bin/python scripts/cpu_by_process.py [--instances 2] [--clients 1 8] [--images 48]

It starts a stack on the demo model (the layout's `StackSettings`), tags fresh world scenes
with TagLLM, and reads the CPU time of this process and its descendants from /proc before and
after each level (Linux). A process that exits in between (a restart) makes its kind's figure
meaningless; the stack logs say when one did.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tagllm.client import strategy_options
from tagllm.mllm.default_model import default_model_dir
from tagllm.throughput import _level, _stack, scenes

KINDS = (
    ("triton_python_backend_stub", "model"),
    ("tritonserver", "triton"),
    ("services.gateway", "gateway"),
    ("services.refiner", "refiner"),
    ("services.metrics", "metrics service"),
)


def cpu_seconds_by_kind() -> dict[str, float]:
    """CPU seconds so far of this process and its descendants (the stack it started), by kind."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    stats: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        stats[int(entry.name)] = (command, (int(fields[11]) + int(fields[12])) / tick)
    seconds: dict[str, float] = {}
    for pid, (command, used) in stats.items():
        ancestor = pid
        while ancestor not in (os.getpid(), 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor != os.getpid():
            continue
        kind = (
            "client" if pid == os.getpid() else next((k for marker, k in KINDS if marker in command), "other")
        )
        seconds[kind] = seconds.get(kind, 0.0) + used
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1, help="model instances")
    parser.add_argument("--threads", type=int, default=0, help="compute threads per instance (0: default)")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--images", type=int, default=48, help="images per level")
    args = parser.parse_args()
    layout = {
        "max_batch_size": args.max_batch_size,
        "model_instances": args.instances,
        "model_threads": args.threads,
    }
    options = strategy_options("tagllm")
    with (
        tempfile.TemporaryDirectory() as folder,
        _stack(default_model_dir(), "transformers", layout, Path(folder)) as client,
    ):
        _level(client, scenes(10**6, 8), 4, options, "world")  # warm-up
        first = 0
        for clients in args.clients:
            images = scenes(first, args.images)
            first += args.images
            before, start = cpu_seconds_by_kind(), time.perf_counter()
            row = _level(client, images, clients, options, "world")
            wall = time.perf_counter() - start
            used = {
                k: 1000 * (v - before.get(k, 0.0)) / args.images for k, v in cpu_seconds_by_kind().items()
            }
            print(json.dumps({
                "layout": layout, "clients": clients, "images_per_second": round(row["images_per_second"], 2),
                "wall_ms_per_image": round(1000 * wall / args.images, 1),
                "cpu_ms_per_image": {k: round(v, 1) for k, v in sorted(used.items())},
                "cpu_ms_per_image_total": round(sum(used.values()), 1),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
