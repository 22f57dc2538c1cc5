"""Per-class thresholds on calibrated scores, for a stated target.

`f1`: the threshold of best F1 for the class, counting as missed the gold positives that were
never verified (stage 1 did not propose them, so no threshold can recover them).
`precision:P`: the lowest threshold whose precision reaches P (the most recall at that precision);
a class that cannot reach P gets threshold 1 (kept only at a score of exactly 1).
A threshold lies midway between the last score kept and the next score below, so it does not sit
on a sample. A class with fewer than `min_positives` right candidates takes the threshold found
for all classes pooled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Target:
    kind: str  # "f1" or "precision"
    precision: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Target:
        if text == "f1":
            return cls("f1")
        if text.startswith("precision:"):
            try:
                value = float(text.removeprefix("precision:"))
            except ValueError:
                value = -1.0
            if 0 < value <= 1:
                return cls("precision", value)
        raise ValueError(f"target {text[:40]!r}: use 'f1' or 'precision:P' with P in (0, 1]")

    def __str__(self) -> str:
        return "f1" if self.kind == "f1" else f"precision:{self.precision:g}"


def choose_threshold(
    scores: Sequence[float], positives: Sequence[bool], gold_positives: int, target: Target
) -> float | None:
    """The threshold for `target`, or None when the class has no right candidate to aim at."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positives, dtype=bool)
    if not y.any():
        return None
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # Candidate cut after each run of equal scores: keep s[: end].
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True)) + 1
    tp = np.cumsum(y)[ends - 1]
    kept = ends
    total = max(gold_positives, int(y.sum()))
    if target.kind == "f1":
        f1 = 2 * tp / (kept + total)
        cut = int(ends[int(np.argmax(f1))])
    else:
        reaching = np.flatnonzero(tp / kept >= target.precision)
        if not reaching.size:
            return 1.0
        cut = int(ends[reaching[-1]])
    below = s[cut] if cut < len(s) else 0.0
    return float((s[cut - 1] + below) / 2)


def class_thresholds(
    samples: Mapping[str, tuple[Sequence[float], Sequence[bool]]],
    gold_positives: dict[str, int],
    target: Target,
    min_positives: int = 10,
) -> tuple[float, dict[str, float]]:
    """(the pooled threshold, each class's threshold) on calibrated scores."""
    every_s = [v for scores, _ in samples.values() for v in scores]
    every_y = [v for _, positives in samples.values() for v in positives]
    pooled = choose_threshold(every_s, every_y, sum(gold_positives.values()), target)
    pooled = 0.5 if pooled is None else pooled
    chosen = {}
    for name, (scores, positives) in samples.items():
        threshold = None
        if sum(bool(v) for v in positives) >= min_positives:
            threshold = choose_threshold(scores, positives, gold_positives.get(name, 0), target)
        chosen[name] = pooled if threshold is None else threshold
    return pooled, chosen
