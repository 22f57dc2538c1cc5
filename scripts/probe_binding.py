"""Whether a demo checkpoint's yes/no answers depend on the name asked: within-image AUC of
P(yes) on held-out world scenes, every class asked about, bare names and concept-aligned
questions (0.5: chance; `tagllm/demo_model/binding.py` says how it is computed).

    .venv/bin/python scripts/probe_binding.py [CHECKPOINT] [--scenes 40]
"""

from __future__ import annotations

import argparse

from tagllm.datasets.world import VOCABULARY_NAME, scene, split_seed
from tagllm.demo_model.binding import within_image_auc
from tagllm.mllm.default_model import DEMO_MODEL_DIR
from tagllm.vocab import builtin_vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default=str(DEMO_MODEL_DIR))
    parser.add_argument("--scenes", type=int, default=40, help="held-out scenes, from the first")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tagllm.mllm.processors import register_processors

    register_processors()
    processor = AutoProcessor.from_pretrained(args.checkpoint)
    model = AutoModelForImageTextToText.from_pretrained(args.checkpoint, dtype=torch.float32)
    vocabulary = builtin_vocabulary(VOCABULARY_NAME)
    scenes = [scene(split_seed("heldout", i)) for i in range(args.scenes)]
    for concepts in (False, True):
        auc = within_image_auc(processor, model, vocabulary, scenes, concepts)
        kind = "concept-aligned" if concepts else "bare name"
        print(f"{kind}: within-image AUC of P(yes) {auc:.3f} on {args.scenes} held-out scenes")


if __name__ == "__main__":
    main()
