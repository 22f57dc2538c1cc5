"""Readers of image-level labels: COCO instances JSON, Pascal VOC XML, a generic CSV.

Every reader returns a `LabelledSet`: the images (file names relative to an image root) and,
per image, the set of category names. Malformed files raise `DatasetError` naming the file and
the offending entry.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path


class DatasetError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class LabelledSet:
    # Category names in the file's order.
    categories: tuple[str, ...]
    # file name -> category names present; every image appears, possibly with an empty set.
    labels: dict[str, frozenset[str]]

    @property
    def images(self) -> list[str]:
        return list(self.labels)


def read_coco(path: str | Path) -> LabelledSet:
    """Image-level labels from a COCO instances file: a category is present if any box has it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(k in data for k in ("images", "categories")):
        raise DatasetError(f"{path}: a COCO file needs 'images' and 'categories'")
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: malformed image or category entry: {exc!r}") from exc
    labels: dict[str, set[str]] = {name: set() for name in images.values()}
    for n, annotation in enumerate(data.get("annotations", [])):
        try:
            image, category = int(annotation["image_id"]), int(annotation["category_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: annotations[{n}] is malformed: {exc!r}") from exc
        if image not in images:
            raise DatasetError(f"{path}: annotations[{n}] names unknown image_id {image}")
        if category not in categories:
            raise DatasetError(f"{path}: annotations[{n}] names unknown category_id {category}")
        labels[images[image]].add(categories[category])
    return LabelledSet(tuple(categories.values()), {k: frozenset(v) for k, v in labels.items()})


def read_voc(annotation_dir: str | Path) -> LabelledSet:
    """Pascal VOC: one XML file per image under `annotation_dir` (objects' `name` elements)."""
    folder = Path(annotation_dir)
    files = sorted(folder.glob("*.xml"))
    if not files:
        raise DatasetError(f"{folder}: no VOC annotation (.xml) files")
    labels: dict[str, frozenset[str]] = {}
    seen: dict[str, None] = {}
    for file in files:
        try:
            root = ElementTree.parse(file).getroot()
        except ElementTree.ParseError as exc:
            raise DatasetError(f"{file}: not valid XML: {exc}") from exc
        filename = root.findtext("filename") or f"{file.stem}.jpg"
        names = set()
        for obj in root.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if not name:
                raise DatasetError(f"{file}: an <object> has no <name>")
            names.add(name)
            seen.setdefault(name)
        labels[filename] = frozenset(names)
    return LabelledSet(tuple(seen), labels)


def read_csv(path: str | Path) -> LabelledSet:
    """A CSV with an `image` column and a `labels` column of names separated by `|` or `;`."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from exc
    if not rows or not {"image", "labels"} <= set(rows[0]):
        raise DatasetError(f"{path}: needs a header with 'image' and 'labels' columns")
    labels: dict[str, frozenset[str]] = {}
    seen: dict[str, None] = {}
    for n, row in enumerate(rows, start=2):
        image = (row.get("image") or "").strip()
        if not image:
            raise DatasetError(f"{path}: line {n} has no image")
        names = {p.strip() for p in (row.get("labels") or "").replace(";", "|").split("|") if p.strip()}
        for name in names:
            seen.setdefault(name)
        labels[image] = labels.get(image, frozenset()) | names
    return LabelledSet(tuple(seen), labels)


def read_labels(path: str | Path) -> LabelledSet:
    """Any of the formats above, chosen by what `path` is."""
    path = Path(path)
    if path.is_dir():
        return read_voc(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    return read_coco(path)
