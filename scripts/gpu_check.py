#!/usr/bin/env python3
"""GPU check: naive vs optimised TagLLM on a full-size random Qwen2.5-VL-7B-class model.

Builds the model from the written-out configuration below (bf16, random weights, nothing
downloaded), serves it through the same TransformersMLLM as production, and runs the
controlled TagLLM comparison of `tagllm bench` (stage 1 over COCO's groups, stage 2 over K
candidates, against one whole-vocabulary multi-option pass). Then the throughput sweep: N
images' TagLLM requests (stage 1, then stage 2 with 6 candidates) answered as one batch
(`run_batch`, what the model server does with N concurrent clients) against one at a time, for
N = 1, 2, 4, 8, 16, with how many answers differ. Prints one JSON object with the model seconds
and images per second of each.

Run on a machine with one GPU (the bf16 weights alone take 15.4 GiB), from the repository root:
    python scripts/gpu_check.py --images 4 > gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

QWEN2_5_VL_7B = {
    "text_config": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 128000,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    },
}


# The same architecture at a size a CPU runs in seconds: checks this script before a GPU run.
SMOKE = {
    "text_config": {
        **QWEN2_5_VL_7B["text_config"], "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1,
        "num_attention_heads": 4, "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]},
    },
    "vision_config": {
        **QWEN2_5_VL_7B["vision_config"], "depth": 1, "hidden_size": 128, "intermediate_size": 256,
        "num_heads": 2, "out_hidden_size": 256, "fullatt_block_indexes": [0],
    },
}  # fmt: skip


def build(processor_dir: Path, device: str, architecture: dict):
    """Production wrappers (optimised, naive) sharing one random model of `architecture`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from tagllm.mllm.transformers_backend import TransformersMLLM

    optimised = TransformersMLLM(processor_dir, device=device, dtype="bfloat16")
    naive = TransformersMLLM(
        processor_dir, device=device, dtype="bfloat16", shared_prefix=False, prefix_cache_bytes=0
    )
    tiny = optimised.model.config
    text = {**architecture["text_config"], "eos_token_id": tiny.text_config.eos_token_id,
            "pad_token_id": tiny.text_config.pad_token_id, "bos_token_id": None}  # fmt: skip
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=architecture["vision_config"],
        image_token_id=tiny.image_token_id,
        video_token_id=tiny.video_token_id,
        vision_start_token_id=tiny.vision_start_token_id,
        vision_end_token_id=tiny.vision_end_token_id,
    )
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16).eval()
    model.generation_config = optimised.model.generation_config
    optimised.model = naive.model = model
    return optimised, naive


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--smoke", action="store_true", help="a small model of the same architecture (CPU check)"
    )
    parser.add_argument(
        "--count", action="store_true", help="only count the parameters (meta device, no GPU)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()
    if args.count:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        text = {**QWEN2_5_VL_7B["text_config"], "bos_token_id": None}
        config = Qwen2_5_VLConfig(text_config=text, vision_config=QWEN2_5_VL_7B["vision_config"])
        with torch.device("meta"):
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
        parameters = sum(p.numel() for p in model.parameters())
        print(json.dumps({"parameters": parameters, "bf16_gib": parameters * 2 / 2**30}))
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2

    from tagllm.bench import BenchSettings, _controlled, _images, batch_sweep
    from tagllm.mllm.tiny import TinySpec, build_tiny_model
    from tagllm.vocab import builtin_vocabulary

    settings = BenchSettings(images=args.images, image_size=args.image_size, candidates=(3, 6, 10))
    with tempfile.TemporaryDirectory() as folder:
        build_tiny_model("qwen2_5_vl", Path(folder), TinySpec(image_size=args.image_size))
        started = time.perf_counter()
        optimised, naive = build(Path(folder), args.device, SMOKE if args.smoke else QWEN2_5_VL_7B)
    build_seconds = time.perf_counter() - started
    images = _images(settings.images, settings.image_size)

    def images_at(first: int, count: int) -> list[bytes]:
        return _images(first + count, settings.image_size)[first:]

    vocabulary = builtin_vocabulary("coco")
    _controlled(optimised, naive, images[:1], vocabulary, settings, lambda line: None)  # warm-up
    rows = _controlled(
        optimised, naive, images, vocabulary, settings, lambda line: print(line, file=sys.stderr)
    )
    for row in rows:
        row["optimised_images_per_second"] = 1 / row["optimised_tagllm"]
        row["naive_images_per_second"] = 1 / row["naive_tagllm"]
    sweep = batch_sweep(
        optimised, vocabulary, images_at, args.batch_sizes, settings.answer_tokens,
        lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    result = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device,
        "parameters": sum(p.numel() for p in optimised.model.parameters()),
        "build_seconds": build_seconds,
        "images": len(images),
        "image_size": args.image_size,
        "answer_tokens": settings.answer_tokens,
        "controlled": rows,
        "throughput": sweep,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
