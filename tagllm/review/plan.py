"""The cost side of a review band: how many images go to people, what the merged labels are
expected to be worth, and what the whole costs.

Expectations come from the calibrated scores of the verified candidates (so they mean something
only for a calibrated vocabulary): before review, expected right labels are the sum of the kept
candidates' scores, wrong ones the sum of 1 - score, missed ones the dropped candidates' scores.
A reviewed image is taken as answered right by its reviewer: its candidates contribute their
expected positives as right labels and no errors. Recall is over the verified candidates: a label
stage 1 never proposed is missed either way and not counted here.
"""

from __future__ import annotations

import dataclasses

from tagllm.bulk.records import AnnotationRecord
from tagllm.metrics.cost import gpu_dollars
from tagllm.review.band import Band, select


@dataclasses.dataclass(frozen=True)
class Expected:
    right: float
    wrong: float
    missed: float

    @property
    def precision(self) -> float:
        return self.right / (self.right + self.wrong) if self.right + self.wrong else 0.0

    @property
    def recall(self) -> float:
        return self.right / (self.right + self.missed) if self.right + self.missed else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def errors(self) -> float:
        return self.wrong + self.missed


@dataclasses.dataclass(frozen=True)
class BandPlan:
    band: Band
    images: int
    to_people: int
    model_alone: Expected
    merged: Expected
    gpu_dollars: float
    human_dollars: float

    @property
    def dollars(self) -> float:
        return self.gpu_dollars + self.human_dollars


def _expected(records: list[AnnotationRecord], reviewed: set[str]) -> Expected:
    right = wrong = missed = 0.0
    for record in records:
        for v in record.result.verifications:
            if record.image in reviewed:
                right += v.score
            elif v.confirmed:
                right += v.score
                wrong += 1.0 - v.score
            else:
                missed += v.score
    return Expected(right, wrong, missed)


def plan_band(
    records: list[AnnotationRecord],
    band: Band,
    gpu_price_per_hour: float,
    human_price_per_image: float,
    max_images: int = 0,
) -> BandPlan:
    chosen = {r.image for r in select(records, band, max_images)}
    compute = sum(r.result.usage.model_compute_seconds for r in records)
    return BandPlan(
        band=band,
        images=len(records),
        to_people=len(chosen),
        model_alone=_expected(records, set()),
        merged=_expected(records, chosen),
        gpu_dollars=gpu_dollars(compute, gpu_price_per_hour),
        human_dollars=len(chosen) * human_price_per_image,
    )


def plan_markdown(plans: list[BandPlan], human_price_per_image: float) -> str:
    lines = [
        "| band | to people | share | expected errors | expected P / R / F1 (verified candidates) "
        "| GPU $ | human $ | total $ | all-human $ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in plans:
        m = p.merged
        share = p.to_people / p.images if p.images else 0.0
        lines.append(
            f"| {p.band} | {p.to_people} | {100 * share:.1f}% | "
            f"{p.model_alone.errors:.1f} -> {m.errors:.1f} | "
            f"{m.precision:.3f} / {m.recall:.3f} / {m.f1:.3f} | {p.gpu_dollars:.4f} | "
            f"{p.human_dollars:.2f} | {p.dollars:.2f} | {p.images * human_price_per_image:.2f} |"
        )
    if plans:
        alone = plans[0].model_alone
        lines += [
            "",
            f"Model alone: {alone.errors:.1f} expected errors, expected P / R / F1 "
            f"{alone.precision:.3f} / {alone.recall:.3f} / {alone.f1:.3f} over {plans[0].images} images.",
        ]
    return "\n".join(lines) + "\n"
