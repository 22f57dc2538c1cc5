"""How well scores mean probabilities, and whether they tell right from wrong.

Measured over verified candidates only (every yes/no answer a run recorded, kept or dropped):
labels that no question was asked about have no probability to measure.

ECE: the verified candidates are put into BINS equal-width bins of score ([0, 0.1), ...,
[0.9, 1]); ECE is the mean over bins, weighted by their share of candidates, of |fraction of
right candidates - mean score|. A constant score at the base rate has ECE 0 and tells nothing,
so the within-image AUC stands beside it: per image with at least one right and one wrong
candidate, the probability that a right one outscores a wrong one (ties count one half),
averaged over those images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

BINS = 10


@dataclasses.dataclass(frozen=True)
class Sample:
    """One verified candidate of an image, and whether the gold labels have it."""

    image: str
    name: str
    # The model's P(yes), which calibration is fitted on.
    probability: float
    # The served score, which ECE measures.
    score: float
    positive: bool


@dataclasses.dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    mean_score: float
    positive_rate: float


@dataclasses.dataclass(frozen=True)
class CalibrationMeasures:
    samples: int
    ece: float
    # Mean within-image AUC, and how many images had both right and wrong candidates.
    auc: float | None
    auc_images: int
    bins: tuple[Bin, ...]
    base_rate: float


def reliability_bins(scores: Sequence[float], positives: Sequence[bool], bins: int = BINS) -> tuple[Bin, ...]:
    """Equal-width bins of [0, 1]; a score of exactly 1 falls into the last bin."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positives, dtype=float)
    index = np.minimum((s * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        member = index == b
        n = int(member.sum())
        out.append(
            Bin(
                b / bins,
                (b + 1) / bins,
                n,
                float(s[member].mean()) if n else 0.0,
                float(y[member].mean()) if n else 0.0,
            )
        )
    return tuple(out)


def expected_calibration_error(bins: Sequence[Bin]) -> float:
    total = sum(b.count for b in bins)
    if not total:
        return 0.0
    return sum(b.count / total * abs(b.positive_rate - b.mean_score) for b in bins)


def pairwise_auc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float:
    """P(a positive outscores a negative), ties one half."""
    pos = np.asarray(positive_scores, dtype=float)[:, None]
    neg = np.asarray(negative_scores, dtype=float)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def within_image_auc(samples: Iterable[Sample]) -> tuple[float | None, int]:
    by_image: dict[str, tuple[list[float], list[float]]] = {}
    for sample in samples:
        pos, neg = by_image.setdefault(sample.image, ([], []))
        (pos if sample.positive else neg).append(sample.score)
    aucs = [pairwise_auc(pos, neg) for pos, neg in by_image.values() if pos and neg]
    return (float(np.mean(aucs)) if aucs else None), len(aucs)


def measure(samples: Sequence[Sample], bins: int = BINS) -> CalibrationMeasures:
    table = reliability_bins([s.score for s in samples], [s.positive for s in samples], bins)
    auc, auc_images = within_image_auc(samples)
    return CalibrationMeasures(
        samples=len(samples),
        ece=expected_calibration_error(table),
        auc=auc,
        auc_images=auc_images,
        bins=table,
        base_rate=float(np.mean([s.positive for s in samples])) if samples else 0.0,
    )
