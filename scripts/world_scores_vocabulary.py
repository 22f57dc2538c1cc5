"""Prints the built-in `world` vocabulary renamed `world-scores`, uncalibrated and with every
class's threshold at 0: exhaustive yes/no over it keeps every class with its raw P(yes), which
ranks (mAP, within-image AUC) instead of deciding.

    .venv/bin/python scripts/world_scores_vocabulary.py > world-scores.yaml
"""

from tagllm.datasets.world import scores_vocabulary

if __name__ == "__main__":
    print(scores_vocabulary().to_yaml(), end="")
