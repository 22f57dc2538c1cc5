"""The multi-label metrics the TagLLM paper reports, computed from scratch.

Overall (O*): counts pooled over all classes. Per-class (C*): precision and recall of each
class, averaged over classes; CF1 is the harmonic mean of CP and CR (not the mean of per-class
F1). A class nobody predicted has precision 0; a class absent from the gold labels has recall 0
(scikit-learn's zero_division=0). mAP: the mean over classes with at least one positive of the
average precision of the images ranked by score, steps taken at each distinct score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class ClassRow:
    name: str
    support: int
    precision: float
    recall: float
    f1: float
    ap: float | None


@dataclasses.dataclass(frozen=True)
class Scores:
    op: float
    orec: float
    of1: float
    cp: float
    cr: float
    cf1: float
    map: float | None
    classes: tuple[ClassRow, ...]
    images: int


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _harmonic(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def average_precision(scores: list[float], positives: list[bool]) -> float | None:
    total = sum(positives)
    if total == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ap, tp, fp, last_recall, i = 0.0, 0, 0, 0.0, 0
    while i < len(order):
        threshold = scores[order[i]]
        while i < len(order) and scores[order[i]] == threshold:
            tp += positives[order[i]]
            fp += not positives[order[i]]
            i += 1
        recall = tp / total
        ap += (recall - last_recall) * (tp / (tp + fp))
        last_recall = recall
    return ap


def evaluate(
    predictions: Mapping[str, Mapping[str, float]],
    gold: Mapping[str, frozenset[str] | set[str]],
    categories: list[str],
    with_map: bool = True,
) -> Scores:
    """`predictions`: image -> {label: score}; images without a prediction count as empty."""
    images = list(gold)
    rows = []
    tp_all = fp_all = fn_all = 0
    for name in categories:
        predicted = [name in predictions.get(image, {}) for image in images]
        actual = [name in gold[image] for image in images]
        tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
        fp = sum(p and not a for p, a in zip(predicted, actual, strict=True))
        fn = sum(a and not p for p, a in zip(predicted, actual, strict=True))
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        ap = None
        if with_map:
            scores = [predictions.get(image, {}).get(name, 0.0) for image in images]
            ap = average_precision(scores, actual)
        rows.append(ClassRow(name, sum(actual), precision, recall, _harmonic(precision, recall), ap))
    op, orec = _ratio(tp_all, tp_all + fp_all), _ratio(tp_all, tp_all + fn_all)
    cp = sum(r.precision for r in rows) / len(rows) if rows else 0.0
    cr = sum(r.recall for r in rows) / len(rows) if rows else 0.0
    aps = [r.ap for r in rows if r.ap is not None]
    return Scores(
        op=op,
        orec=orec,
        of1=_harmonic(op, orec),
        cp=cp,
        cr=cr,
        cf1=_harmonic(cp, cr),
        map=sum(aps) / len(aps) if with_map and aps else None,
        classes=tuple(rows),
        images=len(images),
    )
