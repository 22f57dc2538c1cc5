"""Exports of an annotation run: COCO-style JSON, CSV of scores, JSONL, Label Studio tasks.

Every export keeps each label's score (so `eval` scores it exactly as the run) and says what
produced it (model, vocabulary version, prompt hash, strategy): COCO and Label Studio in their
metadata fields, CSV in columns, JSONL on every line. `min_score` leaves out labels scoring
below it. Label Studio tasks name images by the run's image ids under a URL prefix of your
choice, and a labeling config to import with them is written beside them. Every file is written
to a temporary file and renamed, so an interrupted export leaves no torn file.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.files import atomic_write, write_text_atomically
from tagllm.vocab import builtin_names, builtin_vocabulary

Records = list[AnnotationRecord]
# The CSV export's columns before the one score column per category.
CSV_STAMP = ("model", "vocabulary_version", "prompt_hash", "strategy")


def _version(record: AnnotationRecord) -> dict[str, Any]:
    return dataclasses.asdict(record.result.version)


def _categories(run: RunDirectory, results: Records) -> list[str]:
    vocabulary = run.manifest().get("vocabulary", "")
    if vocabulary in builtin_names():
        return list(builtin_vocabulary(vocabulary).names)
    return sorted({name for r in results for name in r.label_names})


def _versions(results: Records) -> list[dict[str, Any]]:
    unique = {json.dumps(_version(r), sort_keys=True) for r in results}
    return [json.loads(v) for v in sorted(unique)]


def export_jsonl(run: RunDirectory, results: Records, out: Path) -> None:
    with atomic_write(out) as handle:
        for record in results:
            line = {
                "image": record.image,
                "path": record.path,
                "labels": [dataclasses.asdict(label) for label in record.result.labels],
                "candidates": list(record.result.candidates),
                "verifications": [dataclasses.asdict(v) for v in record.result.verifications],
                "usage": dataclasses.asdict(record.result.usage),
                "version": _version(record),
            }
            handle.write(json.dumps(line) + "\n")


def export_coco(run: RunDirectory, results: Records, out: Path) -> None:
    categories = _categories(run, results)
    category_id = {name: i + 1 for i, name in enumerate(categories)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, record in enumerate(results, start=1):
        images.append({"id": image_id, "file_name": record.image})
        for label in record.result.labels:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id[label.name],
                    "score": label.score,
                    # Image-level labels: no box, no area.
                    "iscrowd": 0,
                    "area": 0,
                    "bbox": [],
                }
            )
    data = {
        "info": {"description": "TagLLM image-level annotations", "versions": _versions(results)},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for name, i in category_id.items()],
    }
    write_text_atomically(out, json.dumps(data))


def export_csv(run: RunDirectory, results: Records, out: Path) -> None:
    """One row per image, one column per category: the label's score, empty where absent."""
    categories = _categories(run, results)
    with atomic_write(out, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *CSV_STAMP, *categories])
        for record in results:
            version, scores = _version(record), record.scores
            writer.writerow(
                [record.image, *(version[k] for k in CSV_STAMP), *(_score(scores.get(c)) for c in categories)]
            )


def _score(value: float | None) -> str:
    return "" if value is None else repr(value)


def export_labelstudio(run: RunDirectory, results: Records, out: Path, image_url_prefix: str = "") -> None:
    """Tasks with one scored choice per label, and `<out>.config.xml`, the labeling config."""
    tasks = []
    for record in results:
        version = record.result.version
        labels = record.result.labels
        model_version = (
            f"{version.model}|{version.vocabulary}@{version.vocabulary_version}|{version.prompt_hash}"
            f"|{version.strategy}"
        )
        result = [
            {
                "from_name": "tags",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [label.name]},
                "score": label.score,
            }
            for label in labels
        ]
        tasks.append(
            {
                "data": {"image": image_url_prefix + record.image, "image_id": record.image},
                "predictions": [
                    {
                        "model_version": model_version,
                        "score": min((label.score for label in labels), default=0.0),
                        "result": result,
                    }
                ],
            }
        )
    write_text_atomically(out, json.dumps(tasks, indent=1))
    choices = "\n".join(
        f'    <Choice value="{html.escape(name, quote=True)}"/>' for name in _categories(run, results)
    )
    write_text_atomically(
        out.with_suffix(".config.xml"),
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <Choices name="tags" toName="image" choice="multiple" showInline="true">\n{choices}\n'
        "  </Choices>\n</View>\n",
    )


EXPORTERS: dict[str, Callable[..., None]] = {
    "jsonl": export_jsonl,
    "coco": export_coco,
    "csv": export_csv,
    "labelstudio": export_labelstudio,
}


def _above(record: AnnotationRecord, min_score: float) -> AnnotationRecord:
    labels = tuple(label for label in record.result.labels if label.score >= min_score)
    return dataclasses.replace(record, result=dataclasses.replace(record.result, labels=labels))


def export_run(
    run: RunDirectory, fmt: str, out: Path, min_score: float = 0.0, image_url_prefix: str = ""
) -> Path:
    if fmt not in EXPORTERS:
        raise KeyError(f"unknown export format {fmt!r}")
    results = [_above(r, min_score) for r in sorted(run.results(), key=lambda r: r.image)]
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "labelstudio":
        export_labelstudio(run, results, out, image_url_prefix)
    else:
        EXPORTERS[fmt](run, results, out)
    return out
