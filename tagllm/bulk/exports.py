"""Exports of an annotation run: COCO-style JSON, one-hot CSV, JSONL, Label Studio tasks.

Every export says what produced it (model, vocabulary version, prompt hash, strategy): COCO and
Label Studio in their metadata fields, CSV in columns, JSONL on every line.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.vocab import builtin_names, builtin_vocabulary

Records = list[AnnotationRecord]


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
    with out.open("w", encoding="utf-8") as handle:
        for record in results:
            line = {
                "image": record.image,
                "path": record.path,
                "labels": [dataclasses.asdict(label) for label in record.result.labels],
                "candidates": list(record.result.candidates),
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
    out.write_text(json.dumps(data), encoding="utf-8")


def export_csv(run: RunDirectory, results: Records, out: Path) -> None:
    categories = _categories(run, results)
    stamp = ["model", "vocabulary_version", "prompt_hash", "strategy"]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *stamp, *categories])
        for record in results:
            version = _version(record)
            writer.writerow(
                [
                    record.image,
                    *(version[k] for k in stamp),
                    *(int(c in record.label_names) for c in categories),
                ]
            )


def export_labelstudio(run: RunDirectory, results: Records, out: Path) -> None:
    tasks = []
    for record in results:
        version = record.result.version
        labels = record.result.labels
        tasks.append(
            {
                "data": {"image": record.path or record.image},
                "predictions": [
                    {
                        "model_version": f"{version.model}|{version.vocabulary}@{version.vocabulary_version}"
                        f"|{version.prompt_hash}|{version.strategy}",
                        "score": min((label.score for label in labels), default=0.0),
                        "result": [
                            {
                                "from_name": "tags",
                                "to_name": "image",
                                "type": "choices",
                                "value": {"choices": [label.name for label in labels]},
                            }
                        ],
                    }
                ],
            }
        )
    out.write_text(json.dumps(tasks, indent=1), encoding="utf-8")


EXPORTERS: dict[str, Callable[[RunDirectory, Records, Path], None]] = {
    "jsonl": export_jsonl,
    "coco": export_coco,
    "csv": export_csv,
    "labelstudio": export_labelstudio,
}


def export_run(run: RunDirectory, fmt: str, out: Path) -> Path:
    if fmt not in EXPORTERS:
        raise KeyError(f"unknown export format {fmt!r}")
    results = sorted(run.results(), key=lambda r: r.image)
    out.parent.mkdir(parents=True, exist_ok=True)
    EXPORTERS[fmt](run, results, out)
    return out
