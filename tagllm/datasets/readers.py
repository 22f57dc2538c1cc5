"""Readers of image-level labels: COCO instances JSON, Pascal VOC XML, a generic CSV.

Every reader returns a `LabelledSet`: the images (file names relative to an image root) and,
per image, the set of category names. Malformed files raise `DatasetError` naming the file and
the offending entry.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tagllm.files import InputFileError, read_bytes, read_json, read_text


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
    data = _read(read_json, path)
    if not isinstance(data, dict) or not all(k in data for k in ("images", "categories")):
        raise DatasetError(f"{path}: a COCO file needs 'images' and 'categories'")
    for key in ("images", "categories", "annotations"):
        if not isinstance(data.get(key, []), list):
            raise DatasetError(f"{path}: '{key}' must be a list, not {type(data[key]).__name__}")
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DatasetError(f"{path}: malformed image or category entry: {str(exc)[:200]!r}") from None
    labels: dict[str, set[str]] = {name: set() for name in images.values()}
    for n, annotation in enumerate(data.get("annotations", [])):
        try:
            image, category = int(annotation["image_id"]), int(annotation["category_id"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise DatasetError(f"{path}: annotations[{n}] is malformed: {str(exc)[:200]!r}") from None
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
            root = ElementTree.fromstring(_read(read_bytes, file))
        except ElementTree.ParseError as exc:
            raise DatasetError(f"{file}: not valid XML: {exc}") from None
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
        rows = list(csv.DictReader(io.StringIO(_read(read_text, path), newline="")))
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV: {exc}") from None
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


def _read(reader, path: Path):
    try:
        return reader(path)
    except InputFileError as exc:
        raise DatasetError(str(exc)) from None


def read_labels(path: str | Path) -> LabelledSet:
    """Any of the formats above, chosen by what `path` is."""
    path = Path(path)
    if path.is_dir():
        return read_voc(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    return read_coco(path)
