"""JSONL: one line per image, the run's own record (the image, its path and the result as the
proto's JSON), so it keeps everything the run does: usage, versions, every verification."""

from __future__ import annotations

from pathlib import Path

from tagllm.bulk.formats.base import ExportFormat, ExportInput, Predictions, unique_versions, version
from tagllm.bulk.records import AnnotationRecord
from tagllm.files import atomic_write, parse_json, read_text


def write(given: ExportInput, out: Path) -> None:
    with atomic_write(out) as handle:
        for record in given.records:
            handle.write(record.to_json() + "\n")


def read(path: Path) -> Predictions:
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            try:
                records.append(AnnotationRecord.from_data(parse_json(line, f"{path}:{number}")))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"line {number}: not an export line ({str(exc)[:200]})") from None
    return predictions_of(records)


def predictions_of(records: list[AnnotationRecord]) -> Predictions:
    """What a run's records say, as every reader returns it."""
    return Predictions(
        {r.image: r.scores for r in records},
        {r.image: r.result.usage for r in records},
        unique_versions(version(r) for r in records),
        {r.image: r.path for r in records if r.path},
        {r.image: r.result.verifications for r in records},
    )


FORMAT = ExportFormat("jsonl", ".jsonl", write, read)
