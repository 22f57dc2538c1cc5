"""CSV: one row per image, what produced it in the first columns, then one column per category
holding the label's score (empty where the image has no such label)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tagllm.bulk.formats.base import ExportFormat, ExportInput, Predictions, version
from tagllm.files import atomic_write, read_text

# The columns before the one score column per category.
STAMP = ("model", "vocabulary_version", "prompt_template_hash", "strategy")
# Exports written before the version took the proto's field names.
OLD_STAMP = ("prompt_hash",)


def write(given: ExportInput, out: Path) -> None:
    with atomic_write(out, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *STAMP, *given.categories])
        for record in given.records:
            stamp, scores = version(record), record.scores
            writer.writerow(
                [record.image, *(stamp[k] for k in STAMP), *(_score(scores.get(c)) for c in given.categories)]
            )


def _score(value: float | None) -> str:
    return "" if value is None else repr(value)


def read(path: Path) -> Predictions:
    try:
        rows = list(csv.DictReader(io.StringIO(read_text(path), newline="")))
    except csv.Error as exc:
        raise ValueError(f"not a readable CSV export: {exc}") from None
    if rows and "image" not in rows[0]:
        raise ValueError("not a TagLLM CSV export (no 'image' column)")
    stamp = {"image", *STAMP, *OLD_STAMP}
    return Predictions(
        {
            row["image"]: {k: float(v) for k, v in row.items() if k not in stamp and v not in ("", None)}
            for row in rows
        },
        {},
    )


FORMAT = ExportFormat("csv", ".csv", write, read)
