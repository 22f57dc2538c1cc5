"""What the demo model's vision tower sees on its own: the vision phase's classifier head on
held-out scenes (a class is present where its logit is above 0), scored like the strategies.

It reads a training run's saved state while the state is still the vision phase's (copy
OUT.training/state.pt when the vision phase ends; the instruction phase overwrites it).

    .venv/bin/python scripts/probe_vision_head.py OUT.training/ STATE.pt [--scenes 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from tagllm.calibration.measures import Sample, within_image_auc
from tagllm.datasets.world import CLASSES, VOCABULARY_NAME, scene, split_seed
from tagllm.demo_model.training import DemoRecipe, DemoTrainer
from tagllm.demo_model.vision_heads import max_pooled_linear, name_scores, name_token_ids
from tagllm.eval.metrics import evaluate
from tagllm.vocab import builtin_vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="the run's OUT.training folder")
    parser.add_argument("state", type=Path, help="a saved state of the vision phase")
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    recipe = DemoRecipe(**json.loads((args.work / "recipe.json").read_text()))
    out = args.work.parent / args.work.name.removesuffix(".training")
    processor, model = DemoTrainer(out, dataclasses.replace(recipe), log=lambda line: None)._load()
    state = torch.load(args.state, weights_only=False)
    if state["phase"] != "vision" or state["head"] is None:
        raise SystemExit(f"{args.state} is not a saved state of the vision phase")
    model.load_state_dict(state["model"])
    if recipe.vision_head == "names":
        head = name_scores(model.get_input_embeddings(), name_token_ids(processor.tokenizer))
    else:
        head = max_pooled_linear(model.config.text_config.hidden_size, len(CLASSES))
    head.load_state_dict(state["head"])
    torch.set_num_threads(args.threads)
    predictions, every_score, gold = {}, {}, {}
    with torch.no_grad():
        for start in range(0, args.scenes, 32):
            drawn = [
                scene(split_seed("heldout", i), recipe.scene_size)
                for i in range(start, min(args.scenes, start + 32))
            ]
            pixels = processor.image_processor(images=[d.image for d in drawn], return_tensors="pt")
            features = model.model.get_image_features(
                pixels["pixel_values"], pixels["image_grid_thw"]
            ).pooler_output
            for offset, (d, logits) in enumerate(zip(drawn, head(features), strict=True)):
                key = str(start + offset)
                gold[key] = set(d.labels)
                every_score[key] = {
                    c.name: float(torch.sigmoid(v)) for c, v in zip(CLASSES, logits, strict=True)
                }
                predictions[key] = {name: p for name, p in every_score[key].items() if p > 0.5}
    names = list(builtin_vocabulary(VOCABULARY_NAME).names)
    scores = evaluate(predictions, gold, names, with_map=False)
    ranked = evaluate(every_score, gold, names)
    auc, _ = within_image_auc(
        [
            Sample(key, name, p, p, name in gold[key])
            for key, scored in every_score.items()
            for name, p in scored.items()
        ]
    )
    print(
        f"vision head, {args.scenes} held-out scenes: "
        f"OF1 {scores.of1:.3f} OP {scores.op:.3f} OR {scores.orec:.3f}; "
        f"every class scored: mAP {ranked.map:.3f}, within-image AUC {auc:.3f}"
    )


if __name__ == "__main__":
    main()
