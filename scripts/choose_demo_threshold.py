"""The P(yes) threshold the built-in `world` vocabulary gives every class, chosen on validation
scenes (split `val`, never the held-out, gate or training scenes) for TagLLM's best OF1.

It tags the scenes in-process with every class's threshold at 0, so that each verified
candidate keeps its P(yes), then sweeps one threshold for all classes. Per-class thresholds
fitted to human labels are calibration's job; this is the one decision threshold the demo model
ships with (`tagllm.datasets.world.VERIFY_THRESHOLD`).

    .venv/bin/python scripts/choose_demo_threshold.py [CHECKPOINT] [--scenes 120]
"""

from __future__ import annotations

import argparse
import dataclasses
import io

from tagllm.datasets.world import VOCABULARY_NAME, scene, split_seed
from tagllm.eval.metrics import evaluate
from tagllm.mllm.default_model import DEMO_MODEL_DIR
from tagllm.mllm.transformers_backend import TransformersMLLM
from tagllm.strategies.base import StrategyOptions, tag_image
from tagllm.vocab import builtin_vocabulary
from tagllm.vocab.validation import revise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default=str(DEMO_MODEL_DIR))
    parser.add_argument("--scenes", type=int, default=120, help="validation scenes, from the first")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    mllm = TransformersMLLM(args.checkpoint, threads=args.threads)
    world = builtin_vocabulary(VOCABULARY_NAME)
    unthresholded = revise(
        world, categories=tuple(dataclasses.replace(c, threshold=0.0) for c in world.categories)
    )
    gold, scored = {}, {}
    for index in range(args.scenes):
        drawn = scene(split_seed("val", index))
        data = io.BytesIO()
        drawn.image.save(data, format="PNG")
        result = tag_image(data.getvalue(), unthresholded, StrategyOptions("tagllm"), mllm)
        gold[str(index)] = set(drawn.labels)
        scored[str(index)] = {label.name: label.score for label in result.labels}
    best = (0.0, 0.5)
    for step in range(1, 20):
        threshold = step / 20
        kept = {key: {n: s for n, s in labels.items() if s >= threshold} for key, labels in scored.items()}
        scores = evaluate(kept, gold, list(world.names), with_map=False)
        print(f"threshold {threshold:.2f}: OF1 {scores.of1:.3f} OP {scores.op:.3f} OR {scores.orec:.3f}")
        best = max(best, (scores.of1, threshold))
    print(f"best: threshold {best[1]:.2f} (OF1 {best[0]:.3f} on {args.scenes} validation scenes)")


if __name__ == "__main__":
    main()
