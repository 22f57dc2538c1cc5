"""Finding image files."""

from __future__ import annotations

from pathlib import Path

# An image file larger than this is not read (the gateway's default limit is 20 MiB; gRPC's 64).
MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_root(labels_file: Path, names: list[str], images_root: Path | None = None) -> Path:
    """Where the images a label file names live: `images_root` if given, else beside the file
    or, as COCO layouts often have it, in an images/ folder next to it."""
    if images_root is not None:
        return images_root
    root = labels_file.parent
    if names and not (root / names[0]).exists() and (root / "images" / names[0]).exists():
        return root / "images"
    return root
