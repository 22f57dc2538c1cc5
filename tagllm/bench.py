"""`tagllm bench`: what TagLLM costs per image, side by side in one process.

Model part (in-process, one random mid-size Qwen2.5-VL, an image prefix of 256+ tokens):
naive TagLLM (every prompt a full prefill with the image), optimised TagLLM (image and shared
prefix once, suffixes batched, stage 2 reusing stage 1's image prefix), one whole-vocabulary
multi-option pass, exhaustive yes/no (optimised); and how model time grows with the number of
prompts per request. Service part: gateway + refiner overhead over calling Triton directly,
with a model that answers instantly so that only the services' cost remains.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tagllm.mllm.contract import MLLMRequest, Mode
from tagllm.mllm.tiny import TinySpec, build_tiny_model
from tagllm.mllm.transformers_backend import TransformersMLLM
from tagllm.prompts import Prompts
from tagllm.strategies import StrategyOptions, tag_image
from tagllm.vocab import builtin_vocabulary


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    images: int = 3
    image_size: int = 448
    hidden_size: int = 384
    layers: int = 4
    sweep: tuple[int, ...] = (1, 4, 11, 20, 40)
    # Controlled TagLLM: candidates verified per image, and tokens per generated answer.
    candidates: tuple[int, ...] = (3, 6, 10)
    answer_tokens: int = 8
    overhead_calls: int = 200
    vocabulary: str = "coco"


def _images(count: int, size: int) -> list[bytes]:
    import io

    from tagllm.datasets.synthetic import DRAWINGS, draw_image

    names = sorted(DRAWINGS)
    images = []
    for i in range(count):
        out = io.BytesIO()
        draw_image([names[i % len(names)], names[(i + 3) % len(names)]], size=size, seed=i).save(
            out, format="PNG"
        )
        images.append(out.getvalue())
    return images


def _timed_tag(mllm: TransformersMLLM, image: bytes, vocabulary, options: StrategyOptions):
    mllm.prefix_cache.clear()  # no help from another strategy's run on the same image
    start = time.perf_counter()
    result = tag_image(image, vocabulary, options, mllm)
    return result, time.perf_counter() - start


def model_benchmark(settings: BenchSettings, log=print) -> dict:
    vocabulary = builtin_vocabulary(settings.vocabulary)
    spec = TinySpec(image_size=settings.image_size, hidden_size=settings.hidden_size, layers=settings.layers)
    with tempfile.TemporaryDirectory() as folder:
        build_tiny_model("qwen2_5_vl", Path(folder), spec)
        optimised = TransformersMLLM(folder)
        naive = TransformersMLLM(folder, shared_prefix=False, prefix_cache_bytes=0)
    params = sum(p.numel() for p in optimised.model.parameters())
    images = _images(settings.images, settings.image_size)
    tag_image(images[0], vocabulary, StrategyOptions(strategy="multi_option"), optimised)  # warm-up
    runs = {
        "naive_tagllm": (naive, "tagllm"),
        "optimised_tagllm": (optimised, "tagllm"),
        "multi_option": (optimised, "multi_option"),
        "binary_optimised": (optimised, "binary"),
    }
    per_image: dict[str, list[dict]] = {name: [] for name in runs}
    identical = True
    for n, image in enumerate(images):
        labels = {}
        for name, (mllm, strategy) in runs.items():
            result, seconds = _timed_tag(mllm, image, vocabulary, StrategyOptions(strategy=strategy))
            per_image[name].append(
                {
                    "seconds": seconds,
                    "model_seconds": result.usage.model_compute_seconds,
                    "calls": result.usage.mllm_calls,
                    "candidates": len(result.candidates),
                }
            )
            labels[name] = {label.name: label.score for label in result.labels}
            log(f"image {n + 1}/{len(images)} {name}: {seconds:.2f} s, {result.usage.mllm_calls} calls")
        naive_labels, optimised_labels = labels["naive_tagllm"], labels["optimised_tagllm"]
        # Same labels; scores equal up to float noise (order among near-equal scores may differ).
        identical &= naive_labels.keys() == optimised_labels.keys() and all(
            abs(naive_labels[n] - optimised_labels[n]) <= 1e-4 for n in naive_labels
        )
    image_tokens = optimised.image_prefix_tokens(images[0])

    def mean(name: str, key: str) -> float:
        return statistics.fmean(row[key] for row in per_image[name])

    summary = {name: {key: mean(name, key) for key in per_image[name][0]} for name in per_image}
    sweep = _sweep(optimised, naive, images[0], vocabulary, settings.sweep, log)
    controlled = _controlled(optimised, naive, images, vocabulary, settings, log)
    return {
        "model": {
            "architecture": "qwen2_5_vl",
            "parameters": params,
            "prefix_tokens": image_tokens,
            **dataclasses.asdict(spec),
        },
        "per_image": summary,
        "labels_identical": identical,
        "ratios": {
            "naive_over_optimised_tagllm": summary["naive_tagllm"]["model_seconds"]
            / summary["optimised_tagllm"]["model_seconds"],
            "optimised_tagllm_over_multi_option": summary["optimised_tagllm"]["model_seconds"]
            / summary["multi_option"]["model_seconds"],
            "binary_over_optimised_tagllm": summary["binary_optimised"]["model_seconds"]
            / summary["optimised_tagllm"]["model_seconds"],
        },
        "sweep": sweep,
        "controlled": controlled,
        "answer_tokens": settings.answer_tokens,
    }


def _controlled(optimised, naive, images, vocabulary, settings: BenchSettings, log) -> list[dict]:
    """TagLLM's two requests with a fixed number of candidates and a fixed answer length.

    A random model proposes nearly every name it is offered, so its own stage 1 says little
    about a real model, which proposes a few. Here stage 2 verifies exactly K candidates, and
    every generated answer (TagLLM's per group, the multi-option pass's one) gets the same
    token budget.
    """
    prompts = Prompts.for_vocabulary(vocabulary)
    groups = [[vocabulary.category(n) for n in g.categories] for g in vocabulary.groups]
    everything = list(vocabulary.categories)
    rows = []
    for k in settings.candidates:
        totals = {"optimised_tagllm": 0.0, "naive_tagllm": 0.0, "multi_option": 0.0}
        for image in images:
            stage1 = MLLMRequest(
                image,
                tuple(prompts.multi_option(g) for g in groups),
                Mode.GENERATE,
                settings.answer_tokens,
                allowed_names=tuple(tuple(c.display_name for c in g) for g in groups),
            )
            questions = tuple(prompts.yes_no(c, vocabulary) for c in everything[:k])
            stage2 = MLLMRequest(image, questions, Mode.SCORE)
            multi = MLLMRequest(
                image,
                (prompts.multi_option(everything),),
                Mode.GENERATE,
                settings.answer_tokens,
                allowed_names=(tuple(c.display_name for c in everything),),
            )
            for name, mllm in (("optimised_tagllm", optimised), ("naive_tagllm", naive)):
                mllm.prefix_cache.clear()
                totals[name] += mllm.run(stage1).compute_seconds + mllm.run(stage2).compute_seconds
            optimised.prefix_cache.clear()
            totals["multi_option"] += optimised.run(multi).compute_seconds
        row = {"candidates": k, **{name: seconds / len(images) for name, seconds in totals.items()}}
        row["optimised_over_multi_option"] = row["optimised_tagllm"] / row["multi_option"]
        row["naive_over_optimised"] = row["naive_tagllm"] / row["optimised_tagllm"]
        log(f"controlled, {k} candidates: {row}")
        rows.append(row)
    return rows


def _sweep(optimised, naive, image, vocabulary, counts, log) -> list[dict]:
    """Model seconds per request as the number of prompts grows (score and generate)."""
    prompts = Prompts.for_vocabulary(vocabulary)
    yes_no = [prompts.yes_no(c, vocabulary) for c in vocabulary.categories]
    groups = [prompts.multi_option([vocabulary.category(n) for n in g.categories]) for g in vocabulary.groups]
    rows = []
    for count in counts:
        row = {"prompts": count}
        for mode, pool, tokens in ((Mode.SCORE, yes_no, 1), (Mode.GENERATE, groups, 8)):
            request = MLLMRequest(image, tuple(pool[i % len(pool)] for i in range(count)), mode, tokens)
            for name, mllm in (("optimised", optimised), ("naive", naive)):
                mllm.prefix_cache.clear()
                row[f"{mode.value}_{name}"] = mllm.run(request).compute_seconds
        log(f"sweep {count} prompts: {row}")
        rows.append(row)
    return rows


def batch_sweep(model, vocabulary, images_at, sizes, answer_tokens: int, log=print) -> list[dict]:
    """N images' TagLLM requests (stage 1 over the vocabulary's groups, then stage 2 with three
    candidates) answered as one batch each (`run_batch`: what the model server does with N
    concurrent callers) against one at a time; wall and CPU seconds, and how many responses
    differ (texts, or P(yes) by more than 1e-2). `images_at(first, count)` gives fresh images."""
    prompts = Prompts.for_vocabulary(vocabulary)
    groups = [[vocabulary.category(n) for n in g.categories] for g in vocabulary.groups]
    candidates = list(vocabulary.categories)[:3]

    def stages(image: bytes) -> tuple[MLLMRequest, MLLMRequest]:
        first = MLLMRequest(
            image, tuple(prompts.multi_option(g) for g in groups), Mode.GENERATE, answer_tokens,
            allowed_names=tuple(tuple(c.display_name for c in g) for g in groups),
        )  # fmt: skip
        return first, MLLMRequest(image, tuple(prompts.yes_no(c, vocabulary) for c in candidates), Mode.SCORE)

    def together(requests: list) -> list:
        return [*model.run_batch([r[0] for r in requests]), *model.run_batch([r[1] for r in requests])]

    def one_by_one(requests: list) -> list:
        return [model.run(r[0]) for r in requests] + [model.run(r[1]) for r in requests]

    def timed(run, requests: list) -> tuple[list, float, float]:
        model.prefix_cache.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = run(requests)
        return outcomes, time.perf_counter() - wall, time.process_time() - cpu

    together([stages(image) for image in images_at(0, 2)])  # warm-up, untimed (timed() clears the cache)
    rows, first = [], 0
    for size in sizes:
        requests = [stages(image) for image in images_at(first, size)]
        first += size
        batched, wall, cpu = timed(together, requests)
        alone, alone_wall, alone_cpu = timed(one_by_one, requests)
        differ = sum(
            isinstance(b, Exception)
            or any(x.text != y.text or abs(x.yes_probability - y.yes_probability) > 1e-2
                   for x, y in zip(b.results, a.results, strict=True))
            for b, a in zip(batched, alone, strict=True)
        )  # fmt: skip
        row = {
            "images": size,
            "batched_images_per_second": size / wall,
            "alone_images_per_second": size / alone_wall,
            "batched_cpu_seconds_per_image": cpu / size,
            "alone_cpu_seconds_per_image": alone_cpu / size,
            "responses_that_differ": differ,
        }
        log(f"batch sweep, {size} images: {row}")
        rows.append(row)
    return rows


def format_batch_sweep(rows: list[dict]) -> str:
    lines = [
        "| images per batch | batched images/s | one at a time images/s | wall ratio "
        "| batched CPU s/image | one at a time CPU s/image | CPU ratio | responses that differ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        wall = row["batched_images_per_second"] / row["alone_images_per_second"]
        cpu = row["alone_cpu_seconds_per_image"] / max(row["batched_cpu_seconds_per_image"], 1e-9)
        lines.append(
            f"| {row['images']} | {row['batched_images_per_second']:.2f} | "
            f"{row['alone_images_per_second']:.2f} | {wall:.2f}x | "
            f"{row['batched_cpu_seconds_per_image']:.3f} | "
            f"{row['alone_cpu_seconds_per_image']:.3f} | {cpu:.2f}x | {row['responses_that_differ']} |"
        )
    return "\n".join(lines) + "\n"


def overhead_benchmark(settings: BenchSettings, log=print) -> dict:
    """Median latency of one image through gateway -> refiner -> Triton, against the same
    strategy calling Triton directly, with a model that answers instantly."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from tagllm.client import TaggingClient, strategy_options
    from tagllm.imaging import normalize_image
    from tagllm.mllm.triton_client import TritonMLLM
    from tagllm.stack.local import LocalStack, StackSettings
    from tagllm.stack.ports import free_ports

    vocabulary = builtin_vocabulary(settings.vocabulary)
    image = _images(1, settings.image_size)[0]
    normalized = normalize_image(image).png
    options = StrategyOptions(strategy="multi_option")
    with tempfile.TemporaryDirectory() as folder:
        ports: dict[str, Any] = free_ports()
        stack_settings = StackSettings(
            model_dir=Path(folder),
            run_dir=Path(folder),
            model_backend="null",
            service_settings={"gateway": {"cache_entries": 0}},
            **ports,
        )
        log("starting the stack with the null model ...")
        with LocalStack(stack_settings) as stack, TaggingClient(stack.settings.gateway_address) as client:
            triton = TritonMLLM(stack.settings.triton_grpc_address)
            proto_options = strategy_options("multi_option")
            health = health_pb2_grpc.HealthStub(grpc.insecure_channel(stack.settings.gateway_address))
            direct, through, hops = [], [], []
            for i in range(settings.overhead_calls + 20):  # 20 warm-up rounds, interleaved
                start = time.perf_counter()
                tag_image(normalized, vocabulary, options, triton)
                middle = time.perf_counter()
                client.tag(image, vocabulary=settings.vocabulary, options=proto_options)
                end = time.perf_counter()
                health.Check(health_pb2.HealthCheckRequest())  # one bare round trip to a service
                if i >= 20:
                    direct.append(middle - start)
                    through.append(end - middle)
                    hops.append(time.perf_counter() - end)
            triton.close()
    return {
        "calls": settings.overhead_calls,
        "image_bytes": len(image),
        "direct_ms_median": 1000 * statistics.median(direct),
        "gateway_ms_median": 1000 * statistics.median(through),
        "overhead_ms_median": 1000 * (statistics.median(through) - statistics.median(direct)),
        "gateway_ms_p95": 1000 * sorted(through)[int(0.95 * len(through)) - 1],
        "grpc_round_trip_ms_median": 1000 * statistics.median(hops),
    }


def format_table(result: dict) -> str:
    m = result.get("models")
    lines = []
    if m:
        info = m["model"]
        lines += [
            f"model: random Qwen2.5-VL, {info['parameters'] / 1e6:.1f}M parameters, "
            f"image {info['image_size']} px "
            f"-> {info['prefix_tokens']} prefix tokens (header + image)",
            "",
            "| per image | seconds | model seconds | MLLM calls | candidates |",
            "|---|---|---|---|---|",
        ]
        for name, row in m["per_image"].items():
            lines.append(
                f"| {name} | {row['seconds']:.3f} | {row['model_seconds']:.3f} | {row['calls']:.1f} | "
                f"{row['candidates']:.1f} |"
            )
        r = m["ratios"]
        lines += [
            "",
            f"naive / optimised TagLLM (model time): {r['naive_over_optimised_tagllm']:.2f}x; "
            f"labels identical: {m['labels_identical']}",
            "optimised TagLLM / one multi-option pass (model time): "
            f"{r['optimised_tagllm_over_multi_option']:.2f}x",
            f"exhaustive yes/no / optimised TagLLM (model time): {r['binary_over_optimised_tagllm']:.2f}x",
            "",
            "| prompts per request | score optimised | score naive | generate optimised | generate naive |",
            "|---|---|---|---|---|",
        ]
        for row in m["sweep"]:
            lines.append(
                f"| {row['prompts']} | {row['score_optimised']:.3f} | {row['score_naive']:.3f} | "
                f"{row['generate_optimised']:.3f} | {row['generate_naive']:.3f} |"
            )
        lines += [
            "",
            f"controlled: every answer at most {m['answer_tokens']} tokens, "
            "K candidates verified (model seconds)",
            "",
            "| K | optimised TagLLM | naive TagLLM | multi-option pass | optimised / multi-option "
            "| naive / optimised |",
            "|---|---|---|---|---|---|",
        ]
        for row in m["controlled"]:
            lines.append(
                f"| {row['candidates']} | {row['optimised_tagllm']:.3f} | {row['naive_tagllm']:.3f} | "
                f"{row['multi_option']:.3f} | {row['optimised_over_multi_option']:.2f}x | "
                f"{row['naive_over_optimised']:.2f}x |"
            )
    o = result.get("overhead")
    if o:
        lines += [
            "",
            f"gateway + refiner overhead (null model, {o['calls']} calls, median): "
            f"{o['overhead_ms_median']:.2f} ms per image "
            f"(through the gateway {o['gateway_ms_median']:.2f} ms, "
            f"Triton directly {o['direct_ms_median']:.2f} ms; one bare gRPC round trip to a service "
            f"{o['grpc_round_trip_ms_median']:.2f} ms)",
        ]
    return "\n".join(lines) + "\n"
