"""In-process quality of a checkpoint on held-out world scenes: OF1 per strategy, no stack.

A quick look at a training run in progress (`tagllm model train-demo --export-only` writes its
last saved state as a checkpoint); QUALITY.md's table is measured through the stack instead.

    .venv/bin/python scripts/probe_demo_quality.py CHECKPOINT [--scenes 40] [--strategies multi_option,binary]
"""

from __future__ import annotations

import argparse
import io

from tagllm.datasets.world import VOCABULARY_NAME, scene, split_seed
from tagllm.eval.metrics import evaluate
from tagllm.mllm.transformers_backend import TransformersMLLM
from tagllm.strategies.base import StrategyOptions, tag_image
from tagllm.vocab import builtin_vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--scenes", type=int, default=40, help="held-out scenes, from the first")
    parser.add_argument("--strategies", default="multi_option,binary,tagllm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    mllm = TransformersMLLM(args.checkpoint, threads=args.threads)
    vocabulary = builtin_vocabulary(VOCABULARY_NAME)
    scenes = [scene(split_seed("heldout", i)) for i in range(args.scenes)]
    images = []
    for drawn in scenes:
        data = io.BytesIO()
        drawn.image.save(data, format="PNG")
        images.append(data.getvalue())
    gold = {str(i): set(drawn.labels) for i, drawn in enumerate(scenes)}
    for strategy in args.strategies.split(","):
        predictions = {
            str(i): {
                label.name: label.score
                for label in tag_image(image, vocabulary, StrategyOptions(strategy), mllm).labels
            }
            for i, image in enumerate(images)
        }
        scores = evaluate(predictions, gold, list(vocabulary.names), with_map=False)
        print(f"{strategy}: OF1 {scores.of1:.3f} OP {scores.op:.3f} OR {scores.orec:.3f}")


if __name__ == "__main__":
    main()
