"""Exporting an annotation run in one of the registered formats (`tagllm.bulk.formats`).

Every export keeps each label's score (so `eval` scores it exactly as the run) and says what
produced it (model, vocabulary version, prompt hash, strategy). `min_score` leaves out labels
scoring below it. Every file is written to a temporary file and renamed, so an interrupted
export leaves no torn file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tagllm.bulk.formats import FORMATS, ExportInput, Records
from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.vocab import builtin_names, builtin_vocabulary


def _categories(run: RunDirectory, records: Records) -> list[str]:
    vocabulary = run.manifest().get("vocabulary", "")
    if vocabulary in builtin_names():
        return list(builtin_vocabulary(vocabulary).names)
    return sorted({name for r in records for name in r.label_names})


def _above(record: AnnotationRecord, min_score: float) -> AnnotationRecord:
    labels = tuple(label for label in record.result.labels if label.score >= min_score)
    return dataclasses.replace(record, result=dataclasses.replace(record.result, labels=labels))


def export_run(
    run: RunDirectory, fmt: str, out: Path, min_score: float = 0.0, image_url_prefix: str = ""
) -> Path:
    if fmt not in FORMATS:
        raise KeyError(f"unknown export format {fmt!r}")
    records = [_above(r, min_score) for r in sorted(run.results(), key=lambda r: r.image)]
    out.parent.mkdir(parents=True, exist_ok=True)
    FORMATS[fmt].write(ExportInput(records, _categories(run, records), image_url_prefix), out)
    return out
