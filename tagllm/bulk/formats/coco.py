"""COCO-style JSON: image-level annotations (no boxes) with their scores; what produced them in
`info.versions`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tagllm.bulk.formats.base import ExportFormat, ExportInput, Predictions, unique_versions, version
from tagllm.files import read_json, write_text_atomically


def write(given: ExportInput, out: Path) -> None:
    category_id = {name: i + 1 for i, name in enumerate(given.categories)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, record in enumerate(given.records, start=1):
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
        "info": {
            "description": "TagLLM image-level annotations",
            "versions": list(unique_versions(version(r) for r in given.records)),
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for name, i in category_id.items()],
    }
    write_text_atomically(out, json.dumps(data))


def read(path: Path) -> Predictions:
    data = read_json(path)
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {i["id"]: i["file_name"] for i in data["images"]}
    scores: dict[str, dict[str, float]] = {name: {} for name in files.values()}
    for annotation in data["annotations"]:
        scores[files[annotation["image_id"]]][names[annotation["category_id"]]] = float(
            annotation.get("score", 1.0)
        )
    return Predictions(scores, {}, tuple(data.get("info", {}).get("versions", ())))


FORMAT = ExportFormat("coco", ".json", write, read, top_level=dict)
