"""What `tagllm annotate` reads: a folder of images, a file list, or a COCO-style file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from tagllm.datasets.images import image_root, list_images


class SourceError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Item:
    # Stable id of the image within the source (its path relative to the source root).
    image_id: str
    path: Path


def read_source(source: str | Path, images_root: str | Path | None = None) -> list[Item]:
    """Items of a folder (recursively), a .txt/.lst file list, or a COCO JSON (`images[].file_name`)."""
    source = Path(source)
    if source.is_dir():
        return [Item(str(p.relative_to(source)), p) for p in list_images(source)]
    if not source.is_file():
        raise SourceError(f"{source}: no such file or folder")
    root = Path(images_root) if images_root else source.parent
    if source.suffix.lower() == ".json":
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
            names = [str(image["file_name"]) for image in data["images"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SourceError(f"{source}: not a COCO-style file with images[].file_name ({exc})") from exc
        root = image_root(source, names, Path(images_root) if images_root else None)
        return [Item(name, root / name) for name in names]
    lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
    return [
        Item(line, (root / line) if not Path(line).is_absolute() else Path(line)) for line in lines if line
    ]


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
