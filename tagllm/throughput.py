"""`tagllm bench --part throughput`: images per second as concurrent clients grow, through the
whole stack, in three serving layouts:

- `batched`: one model server that batches requests (`max_batch_size`), its threads on every core;
- `instances`: one model server running `instances` copies of the model, each batching, the
  cores shared out among them (on this 2-core machine: one thread each);
- `unbatched`: one model server that runs each request alone (`max_batch_size` 1).

The stacks run side by side; each level of concurrency is measured on each, one after the other,
with the same images, so that a noisy machine affects all alike. With the demo model the labels
are compared image by image against the unbatched server's; with the null model (which answers
instantly) what remains is the services' own cost.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tagllm.loadtest import percentiles


@dataclasses.dataclass(frozen=True)
class ThroughputSettings:
    clients: tuple[int, ...] = (1, 2, 4, 8, 16)
    # Images per level: at least `min_images`, and `images_per_client` for each client (with
    # fewer, the ramp-up and the last half-empty batches weigh on the figure).
    min_images: int = 40
    images_per_client: int = 10
    max_batch_size: int = 8
    # Model instances of the `instances` layout.
    instances: int = 2
    strategy: str = "tagllm"
    # The checkpoint of the model part ("": the default model, the shipped demo model).
    model_dir: str = ""
    null_images: int = 400
    null_strategy: str = "multi_option"
    parts: tuple[str, ...] = ("model", "null")


def scenes(first: int, count: int) -> list[bytes]:
    """Scenes of the synthetic world (the demo model's), none of them in its training split."""
    from tagllm.datasets.world import scene, split_seed

    images = []
    for i in range(first, first + count):
        out = io.BytesIO()
        scene(split_seed("throughput", i)).image.save(out, format="PNG")
        images.append(out.getvalue())
    return images


@contextmanager
def _stack(model_dir: Path, backend: str, layout: dict[str, Any], folder: Path) -> Iterator[Any]:
    from tagllm.client import TaggingClient
    from tagllm.stack.local import LocalStack, StackSettings
    from tagllm.stack.ports import free_ports

    ports: dict[str, Any] = free_ports()
    settings = StackSettings(
        model_dir=model_dir,
        run_dir=folder,
        model_backend=backend,
        **layout,
        # Every request reaches the model: no answers from the gateway's cache.
        service_settings={"gateway": {"cache_entries": 0, "max_in_flight": 64}},
        **ports,
    )
    with LocalStack(settings) as stack, TaggingClient(stack.settings.gateway_address) as client:
        yield client


def _level(client, images: list[bytes], clients: int, options, vocabulary: str) -> dict[str, Any]:
    """Every image tagged once by `clients` threads; throughput, latency and each image's labels."""
    seconds: list[float] = []
    labels: dict[int, dict[str, float]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        start = time.perf_counter()
        try:
            reply = client.tag(images[i], vocabulary=vocabulary, options=options, timeout=300)
        except Exception as exc:  # counted, not fatal: the table says how many failed
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        elapsed = time.perf_counter() - start
        with lock:
            seconds.append(elapsed)
            labels[i] = {label.name: label.score for label in reply.result.labels}

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(len(images))))
    wall = time.perf_counter() - start
    return {
        "clients": clients,
        "images": len(images),
        "failed": len(errors),
        "errors": errors[:3],
        "images_per_second": len(seconds) / wall,
        **percentiles(seconds),
        "labels": labels,
    }


def _sweep(
    model_dir: Path,
    backend: str,
    settings: ThroughputSettings,
    strategy: str,
    vocabulary: str,
    images_at: Callable[[int, int], list[bytes]],
    log,
) -> dict[str, Any]:
    from tagllm.client import strategy_options

    options = strategy_options(strategy)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in LAYOUTS}
    with ExitStack() as stacks, tempfile.TemporaryDirectory() as folder:
        clients = {}
        for name, layout in layouts(settings).items():
            log(f"starting a stack with the {backend} model, {layout} ...")
            clients[name] = stacks.enter_context(_stack(model_dir, backend, layout, Path(folder) / name))
        warm = images_at(10**6, 4)
        for client in clients.values():
            _level(client, warm, 4, options, vocabulary)
        first = 0
        for count in settings.clients:
            total = max(settings.null_images if backend == "null" else settings.min_images,
                        count * settings.images_per_client)  # fmt: skip
            images = images_at(first, total)
            first += total  # fresh images at each level: no image prefix is reused across levels
            for name, client in clients.items():
                row = _level(client, images, count, options, vocabulary)
                rows[name].append(row)
                log(
                    f"{backend} {name}, {count} clients: {row['images_per_second']:.2f} images/s, "
                    f"p50 {row.get('p50_ms', 0):.0f} ms, p99 {row.get('p99_ms', 0):.0f} ms, "
                    f"{row['failed']} failed"
                )
    return {
        "strategy": strategy,
        "max_batch_size": settings.max_batch_size,
        "instance_count": settings.instances,
        **rows,
    }


LAYOUTS = ("batched", "instances", "unbatched")


def layouts(settings: ThroughputSettings) -> dict[str, dict[str, Any]]:
    """The StackSettings of each serving layout."""
    return {
        "batched": {"max_batch_size": settings.max_batch_size},
        "instances": {"max_batch_size": settings.max_batch_size, "model_instances": settings.instances},
        "unbatched": {"max_batch_size": 1},
    }


def _compare(sweep: dict[str, Any], layout: str) -> dict[str, Any]:
    """Images whose label names differ between `layout` and unbatched, and the largest score gap."""
    differ, compared, names, gap = 0, 0, 0, 0.0
    for served, unbatched in zip(sweep[layout], sweep["unbatched"], strict=True):
        for i, labels in served["labels"].items():
            other = unbatched["labels"].get(i)
            if other is None:
                continue
            compared += 1
            names += len(labels)
            if labels.keys() != other.keys():
                differ += 1
                continue
            gap = max([gap, *(abs(labels[n] - other[n]) for n in labels)])
    return {
        "images_compared": compared,
        "labels_compared": names,
        "labels_differ": differ,
        "max_score_gap": gap,
    }


def throughput_benchmark(settings: ThroughputSettings = ThroughputSettings(), log=print) -> dict[str, Any]:
    from tagllm.datasets.world import VOCABULARY_NAME
    from tagllm.mllm.default_model import default_model_dir

    result: dict[str, Any] = {"settings": dataclasses.asdict(settings)}
    if "model" in settings.parts:
        model_dir = Path(settings.model_dir) if settings.model_dir else default_model_dir()
        sweep = _sweep(model_dir, "transformers", settings, settings.strategy, VOCABULARY_NAME, scenes, log)
        agreement = {layout: _compare(sweep, layout) for layout in ("batched", "instances")}
        result["model"] = {"model_dir": str(model_dir), **sweep, "agreement": agreement}
    if "null" in settings.parts:

        def plain(first: int, count: int) -> list[bytes]:
            from PIL import Image

            images = []
            for i in range(first, first + count):
                out = io.BytesIO()
                Image.new("RGB", (64 + i % 32, 48 + i // 32 % 32), (i * 7 % 256, 80, 160)).save(
                    out, format="PNG"
                )
                images.append(out.getvalue())
            return images

        with tempfile.TemporaryDirectory() as folder:
            sweep = _sweep(Path(folder), "null", settings, settings.null_strategy, "coco", plain, log)
        result["null"] = sweep
    for part in ("model", "null"):
        for name in LAYOUTS:
            for row in result.get(part, {}).get(name, []):
                row.pop("labels")
    return result


def format_throughput(result: dict[str, Any]) -> str:
    lines: list[str] = []
    for part, title in (("model", "model"), ("null", "null model")):
        sweep = result.get(part)
        if not sweep:
            continue
        names = {
            "batched": f"batched (max {sweep['max_batch_size']})",
            "instances": f"{sweep['instance_count']} instances, batched",
            "unbatched": "unbatched",
        }
        lines += [
            f"{title}, strategy {sweep['strategy']}: images/s and latency (ms) through the whole stack",
            "",
            "| clients | " + " | ".join(f"{names[n]} images/s | p50 | p99" for n in LAYOUTS) + " | failed |",
            "|---|" + "---|---|---|" * len(LAYOUTS) + "---|",
        ]
        for level in zip(*(sweep[n] for n in LAYOUTS), strict=True):
            cells = [
                f"{row['images_per_second']:.2f} | {row.get('p50_ms', 0):.0f} | {row.get('p99_ms', 0):.0f}"
                for row in level
            ]
            failed = " / ".join(str(row["failed"]) for row in level)
            lines.append(f"| {level[0]['clients']} | " + " | ".join(cells) + f" | {failed} |")
        lines.append("")
        for n in LAYOUTS:
            first = sweep[n][0]["images_per_second"]
            scaling = ", ".join(
                f"{row['clients']}: {row['images_per_second'] / max(first, 1e-9):.2f}x" for row in sweep[n]
            )
            lines.append(f"{names[n]}, throughput over one client's: {scaling}")
        for layout, agreement in sweep.get("agreement", {}).items():
            lines.append(
                f"labels, {names[layout]} vs unbatched: {agreement['labels_differ']} of "
                f"{agreement['images_compared']} images differ; largest score gap "
                f"{agreement['max_score_gap']:.2g}"
            )
        lines.append("")
    return "\n".join(lines)
