"""Prints the built-in `world` vocabulary renamed `world-scores`, uncalibrated and with every
class's threshold at 0: exhaustive yes/no over it keeps every class with its raw P(yes), which
ranks (mAP, within-image AUC) instead of deciding.

    .venv/bin/python scripts/world_scores_vocabulary.py > world-scores.yaml
"""

import dataclasses

from tagllm.vocab import builtin_vocabulary
from tagllm.vocab.validation import revise

if __name__ == "__main__":
    world = builtin_vocabulary("world")
    raw = tuple(dataclasses.replace(c, threshold=0.0, calibration=None) for c in world.categories)
    print(revise(world, name="world-scores", categories=raw).to_yaml(), end="")
