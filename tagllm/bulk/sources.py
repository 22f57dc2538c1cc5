"""What `tagllm annotate` reads: a folder of images, a file list, or a COCO-style file."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from tagllm.datasets.images import image_root, list_images
from tagllm.files import read_json, read_text


class SourceError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Item:
    # Stable id of the image within the source (its path relative to the source root).
    image_id: str
    path: Path


def read_source(
    source: str | Path, images_root: str | Path | None = None, allow_outside_root: bool = False
) -> list[Item]:
    """Items of a folder (recursively), a .txt/.lst file list, or a COCO JSON (`images[].file_name`).

    A list or COCO file names images relative to the image root; a name that leads outside it
    (an absolute path, `..`, a link out) is refused unless `allow_outside_root`: a label file
    from elsewhere must not make a run read, and send away, any file the user can read."""
    source = Path(source)
    if source.is_dir():
        return [Item(str(p.relative_to(source)), p) for p in list_images(source)]
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    root = Path(images_root) if images_root else source.parent
    if source.suffix.lower() == ".json":
        data = read_json(source)
        try:
            names = [image["file_name"] for image in data["images"]]
        except (KeyError, TypeError) as exc:
            raise SourceError(f"{source}: not a COCO-style file with images[].file_name ({exc!r})") from None
        if not all(isinstance(name, str) and name for name in names):
            raise SourceError(f"{source}: every images[].file_name must be a non-empty string")
        root = image_root(source, names, Path(images_root) if images_root else None)
    else:
        names = [line.strip() for line in read_text(source).splitlines() if line.strip()]
    items = [Item(name, root / name) for name in names]
    if not allow_outside_root:
        inside = root.resolve()
        for item in items:
            if "\0" in item.image_id or not item.path.resolve().is_relative_to(inside):
                raise SourceError(
                    f"{source}: {item.image_id[:200]!r} is outside the image root {root}; "
                    "pass --allow-outside-root to read it anyway"
                )
    return items


def read_shard(
    source: str | Path, images_root: str | None, shard: tuple[int, int], allow_outside_root: bool = False
) -> list[Item]:
    """The images of `source` in shard `(index, count)`."""
    return [i for i in read_source(source, images_root, allow_outside_root) if in_shard(i.image_id, *shard)]


def read_references(labels: str | Path) -> dict[str, list[str]]:
    """image -> its human labels, from a COCO, VOC or CSV label file (DatasetError if it is none)."""
    from tagllm.datasets.readers import read_labels

    return {name: sorted(found) for name, found in read_labels(labels).labels.items()}


def in_shard(image_id: str, index: int, count: int) -> bool:
    """Deterministic split: the same image always lands in the same shard, on any machine."""
    digest = hashlib.sha256(image_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count == index


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SourceError(f"--shard must look like I/N (for example 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise SourceError(f"--shard {text}: need 0 <= I < N")
    return index, count
