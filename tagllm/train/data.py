"""Training data from an annotation run (MLLM labels) or a human label file."""

from __future__ import annotations

from pathlib import Path

from tagllm.bulk.run import RunDirectory
from tagllm.datasets.images import image_root
from tagllm.datasets.readers import read_labels
from tagllm.train.recipe import Example


def examples_from(labels_path: str | Path, images_dir: str | Path | None = None) -> list[Example]:
    """Examples of a run directory or a label file; `images_dir` overrides where images live."""
    path = Path(labels_path)
    root = Path(images_dir) if images_dir else None
    if (path / "run.json").exists():
        return [
            Example((root / r.image) if root else Path(r.path), r.label_names)
            for r in RunDirectory(path).results()
        ]
    labelled = read_labels(path)
    folder = image_root(path, labelled.images, root)
    return [Example(folder / image, labels) for image, labels in labelled.labels.items()]
