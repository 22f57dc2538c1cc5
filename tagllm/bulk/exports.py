"""Exports of an annotation run: COCO-style JSON, one-hot CSV, JSONL, Label Studio tasks.

Every export says what produced it (model, vocabulary version, prompt hash, strategy): COCO and
Label Studio in their metadata fields, CSV in columns, JSONL on every line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagllm.bulk.run import RunDirectory
from tagllm.vocab import builtin_names, builtin_vocabulary


def _version(record: dict[str, Any]) -> dict[str, Any]:
    version = dict(record.get("version", {}))
    version.setdefault("strategy", "")
    return version


def _categories(run: RunDirectory, results: list[dict[str, Any]]) -> list[str]:
    vocabulary = run.manifest().get("vocabulary", "")
    if vocabulary in builtin_names():
        return list(builtin_vocabulary(vocabulary).names)
    return sorted({label["name"] for r in results for label in r["labels"]})


def _versions(results) -> list[dict[str, Any]]:
    unique = {json.dumps(_version(r), sort_keys=True) for r in results}
    return [json.loads(v) for v in sorted(unique)]


def export_jsonl(run: RunDirectory, results, out: Path) -> None:
    with out.open("w", encoding="utf-8") as handle:
        for record in results:
            line = {
                "image": record["image"],
                "path": record.get("path", ""),
                "labels": record["labels"],
                "candidates": record.get("candidates", []),
                "usage": record.get("usage", {}),
                "version": _version(record),
            }
            handle.write(json.dumps(line) + "\n")


def export_coco(run: RunDirectory, results, out: Path) -> None:
    categories = _categories(run, results)
    category_id = {name: i + 1 for i, name in enumerate(categories)}
    images, annotations = [], []
    for image_id, record in enumerate(results, start=1):
        images.append({"id": image_id, "file_name": record["image"]})
        for label in record["labels"]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id[label["name"]],
                    "score": label.get("score", 1.0),
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


def export_csv(run: RunDirectory, results, out: Path) -> None:
    categories = _categories(run, results)
    stamp = ["model", "vocabulary_version", "prompt_template_hash", "strategy"]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *stamp, *categories])
        for record in results:
            present = {label["name"] for label in record["labels"]}
            version = _version(record)
            writer.writerow(
                [
                    record["image"],
                    *(version.get(k, "") for k in stamp),
                    *(int(c in present) for c in categories),
                ]
            )


def export_labelstudio(run: RunDirectory, results, out: Path) -> None:
    tasks = []
    for record in results:
        version = _version(record)
        labels = record["labels"]
        tasks.append(
            {
                "data": {"image": record.get("path") or record["image"]},
                "predictions": [
                    {
                        "model_version": f"{version.get('model', '')}|{version.get('vocabulary', '')}"
                        f"@{version.get('vocabulary_version', '')}|{version.get('prompt_template_hash', '')}"
                        f"|{version.get('strategy', '')}",
                        "score": min((label.get("score", 1.0) for label in labels), default=0.0),
                        "result": [
                            {
                                "from_name": "tags",
                                "to_name": "image",
                                "type": "choices",
                                "value": {"choices": [label["name"] for label in labels]},
                            }
                        ],
                    }
                ],
            }
        )
    out.write_text(json.dumps(tasks, indent=1), encoding="utf-8")


EXPORTERS: dict[str, Callable[[RunDirectory, list, Path], None]] = {
    "jsonl": export_jsonl,
    "coco": export_coco,
    "csv": export_csv,
    "labelstudio": export_labelstudio,
}


def export_run(run: RunDirectory, fmt: str, out: Path) -> Path:
    if fmt not in EXPORTERS:
        raise KeyError(f"unknown export format {fmt!r}")
    results = sorted(run.results(), key=lambda r: r["image"])
    out.parent.mkdir(parents=True, exist_ok=True)
    EXPORTERS[fmt](run, results, out)
    return out
