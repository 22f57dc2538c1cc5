"""Annotation runs on disk built from scored records, and gold label files, for the tests of
calibration and review."""

import csv

from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.strategies import Label, Provenance, TagResult, Usage, Verdict, Verification, VersionInfo
from tagllm.vocab import builtin_vocabulary

COCO = builtin_vocabulary("coco")


def record(image: str, verified: dict[str, float], threshold: float = 0.5) -> AnnotationRecord:
    verifications = tuple(Verification(n, p, p, p >= threshold) for n, p in verified.items())
    labels = tuple(
        Label(v.name, v.score, Provenance(verdict=Verdict.CONFIRMED, verification_score=v.yes_probability))
        for v in verifications
        if v.confirmed
    )
    result = TagResult(
        labels,
        Usage(mllm_calls=len(verified) + 3, model_compute_seconds=0.36),
        (),
        VersionInfo("m/1", "coco", COCO.full_version, "abc", "tagllm"),
        candidates=tuple(verified),
        verified=len(verified),
        confirmed=len(labels),
        verifications=verifications,
    )
    return AnnotationRecord(image, f"/data/{image}", result)


def write_run(path, records) -> RunDirectory:
    run = RunDirectory(path)
    run.open({"vocabulary": "coco", "strategy": "tagllm"})
    with run.results_path.open("a") as handle:
        for r in records:
            run.append_result(handle, r)
    return run


def write_gold(path, gold: dict[str, set[str]]):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "labels"])
        for image, labels in gold.items():
            writer.writerow([image, "|".join(sorted(labels))])
    return path
