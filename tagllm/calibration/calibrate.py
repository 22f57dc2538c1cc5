"""`tagllm calibrate`: a vocabulary's new version whose categories carry fitted calibration maps
and thresholds, from the verified candidates of a run and gold labels of the same images.

Calibration is fitted on the model's raw P(yes) (never on a score some earlier calibration
already mapped), so refitting a calibrated vocabulary on new data is well defined. A category
no candidate of the sample was verified for gets the global map and the pooled threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from tagllm.calibration.fit import FitSettings, fit_classes
from tagllm.calibration.measures import CalibrationMeasures, Sample, measure
from tagllm.calibration.thresholds import Target, class_thresholds
from tagllm.strategies import Verification
from tagllm.vocab.model import Vocabulary
from tagllm.vocab.validation import revise

VERSION_SUFFIX = "-calibrated"


@dataclasses.dataclass(frozen=True)
class CalibrationReport:
    vocabulary: Vocabulary
    target: Target
    images: int
    # Measured on the sample itself, with the scores it was served and with the new maps.
    before: CalibrationMeasures
    after: CalibrationMeasures
    pooled_threshold: float
    # Per class: candidates, right ones, method, threshold.
    classes: tuple[tuple[str, int, int, str, float], ...]


def samples_from_results(
    results: Iterable[tuple[str, Sequence[Verification]]], gold: Mapping[str, set[str] | frozenset[str]]
) -> list[Sample]:
    """Every verified candidate (image, its yes/no answers) of the images that have gold labels."""
    return [
        Sample(image, v.name, v.yes_probability, v.score, v.name in gold[image])
        for image, verifications in results
        if image in gold
        for v in verifications
    ]


def calibrate_vocabulary(
    vocabulary: Vocabulary,
    samples: list[Sample],
    gold: Mapping[str, set[str] | frozenset[str]],
    target: Target,
    settings: FitSettings | None = None,
    source: str = "",
) -> CalibrationReport:
    """The calibrated vocabulary; ValueError when the samples hold no verified candidate."""
    if not samples:
        raise ValueError(
            "no verified candidates in the images with gold labels (was the run tagllm or binary?)"
        )
    known = set(vocabulary.names)
    unknown = sorted({s.name for s in samples} - known)
    if unknown:
        raise ValueError(f"the run verified categories not in vocabulary {vocabulary.name!r}: {unknown[:10]}")
    by_class: dict[str, list[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample.name, []).append(sample)
    raw = {n: ([s.probability for s in c], [s.positive for s in c]) for n, c in by_class.items()}
    overall, maps = fit_classes(raw, settings or FitSettings())
    calibrated = [dataclasses.replace(s, score=maps[s.name].apply(s.probability)) for s in samples]
    images = {s.image for s in samples}
    gold_positives = {n: sum(n in gold[i] for i in images) for n in known}
    pooled, thresholds = class_thresholds(
        {n: ([s.score for s in calibrated if s.name == n], [p for p in raw[n][1]]) for n in by_class},
        gold_positives,
        target,
    )
    categories = [
        dataclasses.replace(
            c, calibration=maps.get(c.name, overall), threshold=thresholds.get(c.name, pooled)
        )
        for c in vocabulary.categories
    ]
    base = vocabulary.version.removesuffix(VERSION_SUFFIX)
    provenance = dict(vocabulary.provenance) | {
        "calibration": f"{len(samples)} verified candidates of {len(images)} images, target {target}",
    }
    if source:
        provenance["calibration_source"] = source[-200:]
    revised = revise(vocabulary, categories=categories, version=base + VERSION_SUFFIX, provenance=provenance)
    rows = tuple(
        (
            c.name,
            len(by_class.get(c.name, ())),
            sum(s.positive for s in by_class.get(c.name, ())),
            c.calibration.method if c.name in maps and c.calibration else "global",
            c.threshold,
        )
        for c in revised.categories
    )
    return CalibrationReport(
        revised, target, len(images), measure(samples), measure(calibrated), pooled, rows
    )


def summary_markdown(report: CalibrationReport) -> str:
    before, after = report.before, report.after

    def auc(m: CalibrationMeasures) -> str:
        return "-" if m.auc is None else f"{m.auc:.3f} ({m.auc_images} images)"

    lines = [
        f"Calibrated {report.vocabulary.name} {report.vocabulary.full_version} on {report.images} images, "
        f"{before.samples} verified candidates (ECE: {before.bins and len(before.bins)} equal-width bins; "
        "measured on the fitting sample itself).",
        "",
        "| | ECE | within-image AUC |",
        "|---|---|---|",
        f"| served scores | {before.ece:.4f} | {auc(before)} |",
        f"| calibrated | {after.ece:.4f} | {auc(after)} |",
        "",
        f"Thresholds for target {report.target}; pooled threshold {report.pooled_threshold:.3f}.",
        "",
        "| class | verified | right | map | threshold |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {k} | {r} | {m} | {t:.3f} |" for n, k, r, m, t in report.classes if k]
    unseen = sum(1 for row in report.classes if not row[1])
    if unseen:
        lines += [
            "",
            f"{unseen} classes without a verified candidate take the global map and the pooled threshold.",
        ]
    return "\n".join(lines) + "\n"
